/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nss_aadguest.h: the exported glibc NSS entry points of libnss_aadguest.so.2. */
#ifndef NSS_AADGUEST_H
#define NSS_AADGUEST_H

#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <sys/types.h>

#define NSS_EXPORT __attribute__((visibility("default")))

NSS_EXPORT enum nss_status _nss_aadguest_getpwnam_r(const char *name, struct passwd *pw, char *buf,
						    size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_getpwuid_r(uid_t uid, struct passwd *pw, char *buf,
						    size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_setpwent(int stayopen);
NSS_EXPORT enum nss_status _nss_aadguest_getpwent_r(struct passwd *pw, char *buf, size_t buflen,
						    int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_endpwent(void);

NSS_EXPORT enum nss_status _nss_aadguest_getgrnam_r(const char *name, struct group *gr, char *buf,
						    size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_getgrgid_r(gid_t gid, struct group *gr, char *buf,
						    size_t buflen, int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_setgrent(int stayopen);
NSS_EXPORT enum nss_status _nss_aadguest_getgrent_r(struct group *gr, char *buf, size_t buflen,
						    int *errnop);
NSS_EXPORT enum nss_status _nss_aadguest_endgrent(void);
NSS_EXPORT enum nss_status _nss_aadguest_initgroups_dyn(const char *user, gid_t skipgroup,
							long int *start, long int *size,
							gid_t **groupsp, long int limit,
							int *errnop);

#endif
