/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keydctl's subcommands, one function each, for the table in keydctl.c. Those of cmd_device.c
 * work on the device and the config directly; those of cmd_daemon.c ask the daemon. */
#pragma once

#include "ctl.h"

/* cmd_device.c */
int cmd_enroll(struct ctl *c);
int cmd_rotate(struct ctl *c);
int cmd_audit(struct ctl *c);
int cmd_inspect(struct ctl *c);
int cmd_check(struct ctl *c);
int cmd_unbind(struct ctl *c);

/* cmd_daemon.c */
int cmd_status(struct ctl *c);
int cmd_unlock(struct ctl *c);
int cmd_lock(struct ctl *c);
int cmd_release(struct ctl *c);
int cmd_suspend(struct ctl *c);
int cmd_resume(struct ctl *c);
int cmd_metrics(struct ctl *c);
