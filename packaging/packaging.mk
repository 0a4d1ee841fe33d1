# SPDX-License-Identifier: LGPL-2.1-or-later
# packaging.mk: `make install-extra`, `make deb`, `make rpm`. Included by the
# top Makefile (`include packaging/packaging.mk`), or used beside it:
#   make -f Makefile -f packaging/packaging.mk deb
# It uses the top Makefile's variables (DESTDIR PREFIX SBINDIR LIBDIR PAMDIR
# MANDIR SYSCONFDIR B) and never changes its default goal.
ifndef AG_PACKAGING_MK
AG_PACKAGING_MK := 1
ag_saved_goal := $(.DEFAULT_GOAL)

# Defaults, for when this file is read on its own or before the Makefile's.
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=
# systemd reads units from /lib/systemd/system (Debian 12) or
# /usr/lib/systemd/system (Fedora, Debian 13): ask systemd when it can tell.
SYSTEMDUNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
# pam-auth-update(8) reads its profiles from /usr/share/pam-configs.
PAMCONFIGDIR ?= $(PREFIX)/share/pam-configs
# bash-completion loads completions on demand from here.
BASHCOMPDIR ?= $(or $(shell pkg-config --variable=completionsdir bash-completion 2>/dev/null),$(PREFIX)/share/bash-completion/completions)
DOCDIR ?= $(PREFIX)/share/doc/aadguest
# authselect(8) vendor profiles (RHEL, Fedora).
AUTHSELECTDIR ?= $(PREFIX)/share/authselect/vendor/aadguest

AG_BUILD := $(or $(B),build)
AG_VERSION := $(shell head -n 1 packaging/debian/changelog 2>/dev/null | cut -d ' ' -f 2 | tr -d '()' | sed 's/-[^-]*$$//')
AG_VERSION := $(or $(AG_VERSION),0.1.0)
AG_MAN5 := packaging/man/aadguest.conf.5
AG_MAN8 := packaging/man/aadguest.8 packaging/man/pam_aadguest.8 packaging/man/libnss_aadguest.8

# Man pages, systemd units, the pam-auth-update profile, bash completion and
# an *example* configuration under $(DOCDIR)/examples (a real one is the
# admin's to write, see aadguest.conf(5)). The authselect profile is
# install-authselect (RPM systems).
install-extra:
	install -d -m 0755 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(PAMCONFIGDIR) $(DESTDIR)$(SYSCONFDIR)/aadguest \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 $(AG_MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(AG_MAN8) $(DESTDIR)$(MANDIR)/man8/
	@mkdir -p $(AG_BUILD)/packaging
	sed 's|/usr/sbin/aadguest|$(SBINDIR)/aadguest|g' packaging/systemd/aadguest-sync.service \
		>$(AG_BUILD)/packaging/aadguest-sync.service
	install -m 0644 $(AG_BUILD)/packaging/aadguest-sync.service $(DESTDIR)$(SYSTEMDUNITDIR)/aadguest-sync.service
	sed 's|/usr/sbin/aadguest|$(SBINDIR)/aadguest|g' packaging/systemd/aadguest-watch.service \
		>$(AG_BUILD)/packaging/aadguest-watch.service
	install -m 0644 $(AG_BUILD)/packaging/aadguest-watch.service $(DESTDIR)$(SYSTEMDUNITDIR)/aadguest-watch.service
	install -m 0644 packaging/systemd/aadguest-sync.timer $(DESTDIR)$(SYSTEMDUNITDIR)/aadguest-sync.timer
	install -m 0644 packaging/pam-configs/aadguest $(DESTDIR)$(PAMCONFIGDIR)/aadguest
	install -m 0644 packaging/aadguest.conf.example $(DESTDIR)$(DOCDIR)/examples/aadguest.conf.example
	install -m 0644 packaging/bash-completion/aadguest $(DESTDIR)$(BASHCOMPDIR)/aadguest

install-authselect:
	install -d -m 0755 $(DESTDIR)$(AUTHSELECTDIR)
	install -m 0644 packaging/authselect/aadguest/* $(DESTDIR)$(AUTHSELECTDIR)/
	# The same stacks for local and remote services, and for fingerprint and smart card.
	ln -sf system-auth $(DESTDIR)$(AUTHSELECTDIR)/password-auth
	ln -sf fingerprint-auth $(DESTDIR)$(AUTHSELECTDIR)/smartcard-auth

# Debian packages, built by dpkg-buildpackage in a copy of the source tree
# (build/deb/aadguest-VERSION/, packaging/debian as its debian/); the .deb
# files end up in build/. The package build runs no tests (make check does).
AG_DEB_DIR := $(AG_BUILD)/deb
AG_DEB_TREE := $(AG_DEB_DIR)/aadguest-$(AG_VERSION)
deb:
	rm -rf $(AG_DEB_DIR)
	mkdir -p $(AG_DEB_DIR)
	sh packaging/source-tarball.sh $(AG_DEB_DIR)/aadguest_$(AG_VERSION).orig.tar.gz aadguest-$(AG_VERSION)
	tar -xzf $(AG_DEB_DIR)/aadguest_$(AG_VERSION).orig.tar.gz -C $(AG_DEB_DIR)
	cp -R packaging/debian $(AG_DEB_TREE)/debian
	chmod 0755 $(AG_DEB_TREE)/debian/rules
	cd $(AG_DEB_TREE) && DEB_BUILD_OPTIONS="nocheck $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -us -uc -b $(AG_DPKG_FLAGS)
	rm -f $(AG_BUILD)/aadguest_*.deb $(AG_BUILD)/libnss-aadguest_*.deb $(AG_BUILD)/libpam-aadguest_*.deb \
		$(AG_BUILD)/*-aadguest-dbgsym_*.deb $(AG_BUILD)/aadguest-dbgsym_*.deb
	cp $(AG_DEB_DIR)/*.deb $(AG_BUILD)/
	@ls -1 $(AG_BUILD)/*.deb

# RPM packages, built by rpmbuild with a private _topdir (build/rpm) from a
# tarball of the tree. On a host that is not RPM-based (Debian's `rpm`
# package) the build dependencies cannot be checked against an RPM database
# and there are no debuginfo tools: --nodeps and no debuginfo package.
AG_RPM_TOP := $(abspath $(AG_BUILD))/rpm
AG_RPMBUILD_FLAGS ?= $(if $(wildcard /etc/debian_version),--nodeps --define 'debug_package %{nil}')
rpm:
	rm -rf $(AG_RPM_TOP)
	mkdir -p $(AG_RPM_TOP)/SOURCES $(AG_RPM_TOP)/SPECS $(AG_RPM_TOP)/BUILD $(AG_RPM_TOP)/RPMS \
		$(AG_RPM_TOP)/SRPMS $(AG_RPM_TOP)/BUILDROOT
	sh packaging/source-tarball.sh $(AG_RPM_TOP)/SOURCES/aadguest-$(AG_VERSION).tar.gz aadguest-$(AG_VERSION)
	cp packaging/rpm/aadguest.spec $(AG_RPM_TOP)/SPECS/
	rpmbuild -bb --define '_topdir $(AG_RPM_TOP)' $(AG_RPMBUILD_FLAGS) $(AG_RPM_TOP)/SPECS/aadguest.spec
	rm -f $(AG_BUILD)/aadguest-[0-9]*.rpm
	cp $(AG_RPM_TOP)/RPMS/*/*.rpm $(AG_BUILD)/
	@ls -1 $(AG_BUILD)/*.rpm

.PHONY: install-extra install-authselect deb rpm

# Including this file must not make one of its targets the default.
.DEFAULT_GOAL := $(or $(ag_saved_goal),all)
endif
