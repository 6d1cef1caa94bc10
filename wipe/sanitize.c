// SPDX-License-Identifier: GPL-2.0-or-later
/* Firmware sanitize through the kernel's passthrough interfaces: NVMe admin commands (Identify,
 * Sanitize, Format NVM, the Sanitize Status log) and ATA commands in SCSI ATA PASS-THROUGH(16)
 * (IDENTIFY DEVICE, SANITIZE DEVICE). Offers an operation only when the device advertises it
 * and it cannot reach beyond the one block device we were given. Never logs. */
#include <errno.h>
#include <linux/nvme_ioctl.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "macro.h"
#include "sanitize.h"
#include "util.h"

#define POLL_US		       1000000
#define NVME_FORMAT_TIMEOUT_MS (6u * 3600 * 1000)
#define SANITIZE_FRACTION(v)   ((double)(v) / 65536.0)

const char *sanitize_action_name(enum sanitize_action a)
{
	static const char *const names[] = {
		[SANITIZE_BLOCK_ERASE] = "block-erase",
		[SANITIZE_CRYPTO_ERASE] = "crypto-erase",
		[SANITIZE_OVERWRITE] = "overwrite",
		[SANITIZE_FORMAT_ERASE] = "format-erase",
		[SANITIZE_FORMAT_CRYPTO] = "format-crypto-erase",
	};
	return names[a];
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- NVMe ---- */

enum {
	NVME_ADMIN_GET_LOG = 0x02,
	NVME_ADMIN_IDENTIFY = 0x06,
	NVME_ADMIN_FORMAT = 0x80,
	NVME_ADMIN_SANITIZE = 0x84,
	NVME_LOG_SANITIZE = 0x81,
	NVME_SANACT_BLOCK = 2,
	NVME_SANACT_OVERWRITE = 3,
	NVME_SANACT_CRYPTO = 4,
	NVME_SSTAT_NEVER = 0,
	NVME_SSTAT_DONE = 1,
	NVME_SSTAT_RUNNING = 2,
	NVME_SSTAT_FAILED = 3,
	NVME_SSTAT_DONE_NDAS = 4,
};

/* An NVMe status (> 0 from the ioctl: SC bits 7:0, SCT 10:8, DNR 14) means the controller
 * refused: -EIO, with the status in *status when asked. */
static int nvme_admin(int fd, struct nvme_admin_cmd *c, int *status)
{
	int r = ioctl(fd, NVME_IOCTL_ADMIN_CMD, c);

	if (r < 0)
		return negative_errno();
	if (status)
		*status = r;
	return r > 0 ? -EIO : 0;
}

/* The status codes a Format NVM or Sanitize may end with (NVMe Base 2.0, 3.3.3.2). */
static const char *nvme_status_name(int status)
{
	static const struct {
		int sct, sc;
		const char *name;
	} names[] = {
		{0, 0x00, "Successful Completion"},
		{0, 0x01, "Invalid Command Opcode"},
		{0, 0x02, "Invalid Field in Command"},
		{0, 0x04, "Data Transfer Error"},
		{0, 0x05, "Commands Aborted due to Power Loss Notification"},
		{0, 0x06, "Internal Error"},
		{0, 0x0b, "Invalid Namespace or Format"},
		{0, 0x1c, "Sanitize Failed"},
		{0, 0x1d, "Sanitize In Progress"},
		{0, 0x20, "Namespace is Write Protected"},
		{1, 0x0a, "Invalid Format"},
		{1, 0x13, "Firmware Activation Requires NVM Subsystem Reset"},
		{1, 0x1e, "Prohibition of Command Execution Not Supported"},
	};
	int sct = (status >> 8) & 7, sc = status & 0xff;

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (names[i].sct == sct && names[i].sc == sc)
			return names[i].name;
	return "a status this tool does not name";
}

static void nvme_outcome(struct sanitize_outcome *out, int status, const char *what)
{
	out->status = status;
	snprintf(out->text, sizeof(out->text), "%s: status 0x%04x (SCT %d, SC 0x%02x: %s)%s", what,
		 status, (status >> 8) & 7, status & 0xff, nvme_status_name(status),
		 status & 0x4000 ? ", do not retry" : "");
}

static int nvme_identify(int fd, uint32_t cns, uint32_t nsid, uint8_t buf[4096])
{
	return nvme_admin(fd,
			  &(struct nvme_admin_cmd){.opcode = NVME_ADMIN_IDENTIFY,
						   .nsid = nsid,
						   .addr = (uintptr_t)buf,
						   .data_len = 4096,
						   .cdw10 = cns},
			  NULL);
}

static int nvme_active_namespaces(int fd)
{
	uint8_t list[4096];
	int n = 0, r;

	r = nvme_identify(fd, 2, 0, list);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(list); i += 4)
		n += le32(list + i) != 0;
	return n;
}

static int nvme_probe(int fd, struct sanitize_caps *caps)
{
	uint8_t id[4096], ns[4096];
	int nsid, r;

	r = nvme_identify(fd, 1, 0, id);
	if (r < 0)
		return r;
	caps->nvme = true;
	caps->sanicap = le32(id + 328);
	caps->oacs = le16(id + 256);
	caps->fna = id[524];
	nsid = ioctl(fd, NVME_IOCTL_ID);
	if (nsid > 0 && nvme_identify(fd, 0, (uint32_t)nsid, ns) == 0) {
		caps->dlfeat = ns[33];
		caps->reads_zero = (ns[33] & 7) == 1;
	}
	/* Sanitize acts on the whole NVM subsystem, and Format may act on every namespace (FNA
	 * bits 0-1): offer them only when this namespace is the controller's only one. */
	caps->namespaces = nvme_active_namespaces(fd);
	if (caps->namespaces != 1)
		return 0;
	caps->action[SANITIZE_CRYPTO_ERASE] = caps->sanicap & 1;
	caps->action[SANITIZE_BLOCK_ERASE] = caps->sanicap & 2;
	caps->action[SANITIZE_OVERWRITE] = caps->sanicap & 4;
	caps->action[SANITIZE_FORMAT_ERASE] = caps->oacs & 2; /* OACS: Format NVM */
	caps->action[SANITIZE_FORMAT_CRYPTO] = (caps->oacs & 2) && (caps->fna & 4);
	return 0;
}

static int nvme_sanitize_status(int fd, unsigned *status, double *fraction)
{
	uint8_t log[512];
	int r;

	r = nvme_admin(fd,
		       &(struct nvme_admin_cmd){
			       .opcode = NVME_ADMIN_GET_LOG,
			       .nsid = 0xffffffff,
			       .addr = (uintptr_t)log,
			       .data_len = sizeof(log),
			       .cdw10 = NVME_LOG_SANITIZE | ((sizeof(log) / 4 - 1) << 16),
		       },
		       NULL);
	if (r < 0)
		return r;
	*fraction = SANITIZE_FRACTION(le16(log));
	*status = le16(log + 2) & 7;
	return 0;
}

static int nvme_format(int fd, enum sanitize_action action, struct sanitize_outcome *out)
{
	uint8_t ns[4096];
	uint32_t cdw10, ses = action == SANITIZE_FORMAT_CRYPTO ? 2 : 1;
	int nsid, status = 0, r;

	snprintf(out->command, sizeof(out->command), "Format NVM (SES %u)", ses);
	nsid = ioctl(fd, NVME_IOCTL_ID);
	if (nsid < 0)
		return negative_errno();
	r = nvme_identify(fd, 0, (uint32_t)nsid, ns);
	if (r < 0)
		return r;
	/* Keep the namespace's format (LBA format, metadata and protection settings): only
	 * the Secure Erase Setting changes. */
	cdw10 = (ns[26] & 0x0f) | ((ns[26] >> 4) & 1) << 4 | (ns[29] & 7) << 5 |
		((ns[29] >> 3) & 1) << 8 | ses << 9 | ((ns[26] >> 5) & 3) << 12;
	r = nvme_admin(fd,
		       &(struct nvme_admin_cmd){.opcode = NVME_ADMIN_FORMAT,
						.nsid = (uint32_t)nsid,
						.cdw10 = cdw10,
						.timeout_ms = NVME_FORMAT_TIMEOUT_MS},
		       &status);
	if (r == 0 || status > 0)
		nvme_outcome(out, status, out->command);
	return r;
}

static void nvme_sstat_outcome(struct sanitize_outcome *out, unsigned sstat)
{
	static const char *const what[] = {
		[NVME_SSTAT_NEVER] = "never sanitized",
		[NVME_SSTAT_DONE] = "completed successfully",
		[NVME_SSTAT_RUNNING] = "in progress",
		[NVME_SSTAT_FAILED] = "failed",
		[NVME_SSTAT_DONE_NDAS] = "completed successfully, blocks not deallocated",
	};

	out->sanitize_sstat = (int)sstat;
	snprintf(out->text, sizeof(out->text), "%s: Sanitize Status log SSTAT %u (%s)",
		 out->command, sstat, sstat < ELEMENTSOF(what) && what[sstat] ? what[sstat] : "?");
}

static int nvme_run(int fd, enum sanitize_action action, bool resume,
		    void (*on_progress)(void *, double), void *userdata,
		    struct sanitize_outcome *out)
{
	static const uint32_t sanact[] = {
		[SANITIZE_BLOCK_ERASE] = NVME_SANACT_BLOCK,
		[SANITIZE_CRYPTO_ERASE] = NVME_SANACT_CRYPTO,
		[SANITIZE_OVERWRITE] = NVME_SANACT_OVERWRITE,
	};
	unsigned status = NVME_SSTAT_NEVER;
	double fraction = 0;
	int cstatus = 0, r;

	if (action == SANITIZE_FORMAT_ERASE || action == SANITIZE_FORMAT_CRYPTO) {
		on_progress(userdata, 0);
		r = nvme_format(fd, action, out);
		if (r == 0)
			on_progress(userdata, 1);
		return r;
	}
	snprintf(out->command, sizeof(out->command), "Sanitize (%s)", sanitize_action_name(action));
	if (resume)
		nvme_sanitize_status(fd, &status, &fraction);
	if (status == NVME_SSTAT_DONE || status == NVME_SSTAT_DONE_NDAS) {
		if (resume) {
			nvme_sstat_outcome(out, status);
			return 0;
		}
	}
	if (status != NVME_SSTAT_RUNNING) {
		/* AUSE = 0: if this fails the drive stays in restricted failure mode, where only a
		 * successful sanitize brings it back; one overwrite pass of zeros. */
		r = nvme_admin(fd,
			       &(struct nvme_admin_cmd){
				       .opcode = NVME_ADMIN_SANITIZE,
				       .cdw10 = sanact[action] |
						(action == SANITIZE_OVERWRITE ? 1u << 4 : 0),
				       .cdw11 = 0,
			       },
			       &cstatus);
		if (r < 0) {
			if (cstatus > 0)
				nvme_outcome(out, cstatus, out->command);
			return r;
		}
		out->status = 0;
	}
	for (;;) {
		r = nvme_sanitize_status(fd, &status, &fraction);
		if (r < 0)
			return r;
		if (status != NVME_SSTAT_RUNNING)
			break;
		on_progress(userdata, fraction);
		sleep_us(POLL_US, NULL);
	}
	nvme_sstat_outcome(out, status);
	if (status == NVME_SSTAT_DONE || status == NVME_SSTAT_DONE_NDAS) {
		on_progress(userdata, 1);
		return 0;
	}
	return -EIO;
}

/* ---- ATA (through the SCSI layer's ATA PASS-THROUGH(16)) ---- */

enum {
	ATA_IDENTIFY = 0xec,
	ATA_SANITIZE = 0xb4,
	ATA_SAN_STATUS = 0x0000,
	ATA_SAN_CRYPTO = 0x0011,
	ATA_SAN_BLOCK = 0x0012,
	ATA_SAN_OVERWRITE = 0x0014,
	ATA_PROTO_NONDATA = 3,
	ATA_PROTO_PIO_IN = 4,
};

struct ata_regs {
	uint16_t features, count;
	uint64_t lba;
	uint8_t command;
	/* Outputs (from the ATA Status Return sense descriptor). */
	uint8_t status, error;
};

static int ata_cmd(int fd, struct ata_regs *a, uint8_t proto, void *buf, size_t len)
{
	uint8_t cdb[16] = {0}, sense[32] = {0};
	struct sg_io_hdr io = {
		.interface_id = 'S',
		.dxfer_direction = buf ? SG_DXFER_FROM_DEV : SG_DXFER_NONE,
		.cmd_len = sizeof(cdb),
		.mx_sb_len = sizeof(sense),
		.dxfer_len = (unsigned)len,
		.dxferp = buf,
		.cmdp = cdb,
		.sbp = sense,
		.timeout = 60000,
	};
	const uint8_t *d = sense + 8;

	cdb[0] = 0x85;
	cdb[1] = (uint8_t)(proto << 1 | 1); /* 48-bit command */
	/* Data-in: length in sectors in COUNT; non-data: CK_COND to get the registers back. */
	cdb[2] = buf ? 0x0e : 0x20;
	cdb[3] = (uint8_t)(a->features >> 8);
	cdb[4] = (uint8_t)a->features;
	cdb[5] = (uint8_t)(a->count >> 8);
	cdb[6] = (uint8_t)a->count;
	cdb[7] = (uint8_t)(a->lba >> 24);
	cdb[8] = (uint8_t)a->lba;
	cdb[9] = (uint8_t)(a->lba >> 32);
	cdb[10] = (uint8_t)(a->lba >> 8);
	cdb[11] = (uint8_t)(a->lba >> 40);
	cdb[12] = (uint8_t)(a->lba >> 16);
	cdb[13] = 0x40; /* LBA mode */
	cdb[14] = a->command;
	if (ioctl(fd, SG_IO, &io) < 0)
		return negative_errno();
	if (buf)
		return io.status || io.host_status || io.driver_status ? -EIO : 0;
	/* CK_COND: descriptor-format sense with an ATA Status Return descriptor (09h). */
	if (sense[0] != 0x72 || d[0] != 0x09 || sense[7] < 14)
		return io.status ? -EIO : -EPROTO;
	a->error = d[3];
	a->count = (uint16_t)(d[4] << 8 | d[5]);
	a->lba = (uint64_t)d[7] | (uint64_t)d[9] << 8 | (uint64_t)d[11] << 16 |
		 (uint64_t)d[6] << 24 | (uint64_t)d[8] << 32 | (uint64_t)d[10] << 40;
	a->status = d[13];
	return a->status & 1 ? -EIO : 0; /* ERR bit: the device aborted the command */
}

static int ata_probe(int fd, struct sanitize_caps *caps)
{
	uint16_t id[256];
	struct ata_regs a = {.command = ATA_IDENTIFY, .count = 1};
	int r;

	r = ata_cmd(fd, &a, ATA_PROTO_PIO_IN, id, sizeof(id));
	if (r < 0)
		return r;
	caps->ata = true;
	caps->ata_word59 = id[59];
	/* Word 59: bit 12 SANITIZE feature set; 13 CRYPTO SCRAMBLE, 14 OVERWRITE, 15 BLOCK
	 * ERASE. */
	if (!(id[59] & (1u << 12)))
		return 0;
	caps->action[SANITIZE_CRYPTO_ERASE] = id[59] & (1u << 13);
	caps->action[SANITIZE_OVERWRITE] = id[59] & (1u << 14);
	caps->action[SANITIZE_BLOCK_ERASE] = id[59] & (1u << 15);
	return 0;
}

static int ata_run(int fd, enum sanitize_action action, bool resume,
		   void (*on_progress)(void *, double), void *userdata,
		   struct sanitize_outcome *out)
{
	static const char *const names[] = {
		[SANITIZE_CRYPTO_ERASE] = "CRYPTO SCRAMBLE EXT",
		[SANITIZE_BLOCK_ERASE] = "BLOCK ERASE EXT",
		[SANITIZE_OVERWRITE] = "OVERWRITE EXT",
	};
	/* Each sanitize subcommand carries a signature in the LBA field so that a stray
	 * command cannot start one: "Cryp", "BkEr", and "OW" with a zero pattern. */
	static const struct ata_regs start[] = {
		[SANITIZE_CRYPTO_ERASE] = {.features = ATA_SAN_CRYPTO, .lba = 0x43727970},
		[SANITIZE_BLOCK_ERASE] = {.features = ATA_SAN_BLOCK, .lba = 0x426b4572},
		[SANITIZE_OVERWRITE] = {.features = ATA_SAN_OVERWRITE,
					.count = 1,
					.lba = 0x4f57ull << 32},
	};
	struct ata_regs a;
	int r;

	if (action > SANITIZE_OVERWRITE)
		return -EOPNOTSUPP;
	snprintf(out->command, sizeof(out->command), "SANITIZE DEVICE (%s)", names[action]);
	a = (struct ata_regs){.command = ATA_SANITIZE, .features = ATA_SAN_STATUS};
	r = ata_cmd(fd, &a, ATA_PROTO_NONDATA, NULL, 0);
	if (r < 0)
		return r;
	if (!(resume && (a.count & (1u << 14)))) {
		if (resume && (a.count & (1u << 15))) {
			snprintf(out->text, sizeof(out->text),
				 "%s: SANITIZE STATUS EXT: completed without error", out->command);
			return 0;
		}
		a = start[action];
		a.command = ATA_SANITIZE;
		r = ata_cmd(fd, &a, ATA_PROTO_NONDATA, NULL, 0);
		if (r < 0)
			return r;
	}
	for (;;) {
		a = (struct ata_regs){.command = ATA_SANITIZE, .features = ATA_SAN_STATUS};
		r = ata_cmd(fd, &a, ATA_PROTO_NONDATA, NULL, 0);
		if (r < 0) { /* ABORT here means the sanitize failed */
			snprintf(out->text, sizeof(out->text),
				 "%s: SANITIZE STATUS EXT aborted (error register 0x%02x)",
				 out->command, a.error);
			return r;
		}
		if (!(a.count & (1u << 14)))
			break;
		on_progress(userdata, SANITIZE_FRACTION(a.lba & 0xffff));
		sleep_us(POLL_US, NULL);
	}
	snprintf(out->text, sizeof(out->text), "%s: SANITIZE STATUS EXT count 0x%04x (%s)",
		 out->command, a.count,
		 a.count & (1u << 15) ? "bit 15: completed without error" : "not completed");
	if (!(a.count & (1u << 15)))
		return -EIO;
	on_progress(userdata, 1);
	return 0;
}

int sanitize_probe(int fd, const char *transport, struct sanitize_caps *caps)
{
	*caps = (struct sanitize_caps){0};
	if (strcmp(transport, "nvme") == 0)
		return nvme_probe(fd, caps);
	if (strcmp(transport, "ata") == 0)
		return ata_probe(fd, caps);
	return 0;
}

void sanitize_explain(const struct sanitize_caps *c, enum sanitize_action action, char *buf,
		      size_t size)
{
	static const char *const sanicap_bit[] = {
		[SANITIZE_CRYPTO_ERASE] = "bit 0, crypto erase",
		[SANITIZE_BLOCK_ERASE] = "bit 1, block erase",
		[SANITIZE_OVERWRITE] = "bit 2, overwrite",
	};
	static const char *const word59_bit[] = {
		[SANITIZE_CRYPTO_ERASE] = "13, CRYPTO SCRAMBLE EXT",
		[SANITIZE_BLOCK_ERASE] = "15, BLOCK ERASE EXT",
		[SANITIZE_OVERWRITE] = "14, OVERWRITE EXT",
	};

	buf[0] = 0;
	if (c->action[action])
		return;
	if (c->nvme && c->namespaces != 1)
		snprintf(buf, size,
			 "the controller has %d active namespaces (Identify CNS 02h): sanitize "
			 "and format would reach beyond this one",
			 c->namespaces);
	else if (c->nvme && action <= SANITIZE_OVERWRITE)
		snprintf(buf, size, "the controller's Identify data has SANICAP 0x%08x (%s: clear)",
			 c->sanicap, sanicap_bit[action]);
	else if (c->nvme && !(c->oacs & 2))
		snprintf(
			buf, size,
			"the controller's Identify data has OACS 0x%04x (bit 1, Format NVM: clear)",
			c->oacs);
	else if (c->nvme)
		snprintf(
			buf, size,
			"the controller's Identify data has FNA 0x%02x (bit 2, cryptographic erase "
			"in Format NVM: clear)",
			c->fna);
	else if (c->ata && action <= SANITIZE_OVERWRITE)
		snprintf(buf, size, "IDENTIFY DEVICE word 59 is 0x%04x (bit %s: clear)",
			 c->ata_word59,
			 c->ata_word59 & (1u << 12) ? word59_bit[action]
						    : "12, SANITIZE feature set");
	else if (c->ata)
		snprintf(buf, size, "Format NVM is an NVMe command; this is an ATA device");
}

int sanitize_run(int fd, const char *transport, enum sanitize_action action, bool resume,
		 void (*on_progress)(void *userdata, double fraction), void *userdata,
		 struct sanitize_outcome *out)
{
	struct sanitize_caps caps;
	int r;

	*out = (struct sanitize_outcome){.status = -1, .sanitize_sstat = -1};
	r = sanitize_probe(fd, transport, &caps);
	if (r < 0)
		return r;
	if (!caps.action[action])
		return -EOPNOTSUPP;
	if (caps.nvme)
		return nvme_run(fd, action, resume, on_progress, userdata, out);
	return ata_run(fd, action, resume, on_progress, userdata, out);
}
