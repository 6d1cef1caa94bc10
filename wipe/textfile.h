/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A wipe run's outcome for Prometheus: one file per device, wipe-<device-id>.prom in
 * node_exporter's textfile directory, in the text exposition format, replaced atomically by each
 * run (so the collector never reads half a file, and the latest run of a device is what it
 * exports). Writes that file only; never logs. */
#pragma once

#include <stddef.h>

#include "job.h"

/* 0 when @dir is a directory wipe may write into; -ENOTDIR, -errno of stat/access. */
int textfile_check_dir(const char *dir);

/* The text of @j's metrics, allocated into *ret (free()). -ENOMEM. */
int textfile_format(const struct wipe_job *j, char **ret);

/* Writes @j's file into @dir; its path into @path. -EINVAL for a job without a device id,
 * -errno of the write. */
int textfile_write(const char *dir, const struct wipe_job *j, char *path, size_t size);
