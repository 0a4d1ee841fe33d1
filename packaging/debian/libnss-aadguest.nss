# SPDX-License-Identifier: LGPL-2.1-or-later
# dh_installnss(1): "aadguest" after "files" on the passwd and group lines of
# /etc/nsswitch.conf on install (never twice), out again on remove and purge.
passwd after=files aadguest
group after=files aadguest
