// SPDX-License-Identifier: GPL-2.0-or-later
/* config_load() on keyd.json files: the defaults of every section, every section's values
 * taken as written, and bad input refused with an error naming the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "callback_config.h"
#include "config.h"
#include "secmem.h"
#include "sign.h"

static char dir[] = "/tmp/test-config.XXXXXX";
static char path[96];

/* The smallest valid config: one file KMS. */
#define KMS_LOCAL "\"kms\": {\"local\": {\"provider\": \"file\", \"root_key_file\": \"/k\"}}"

/* Two file KMS, for volumes wrapped by several. */
#define KMS2                                                                                       \
	"{\"kms\": {\"local\": {\"provider\": \"file\", \"root_key_file\": \"/k\"},"               \
	"         \"other\": {\"provider\": \"file\", \"root_key_file\": \"/k2\"}}"

static int load(const char *json, struct keyd_config **cfg, struct error *e)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(json, f);
	fclose(f);
	e->msg[0] = 0;
	*cfg = NULL;
	return config_load(path, cfg, e);
}

static struct keyd_config *loaded(const char *json)
{
	struct keyd_config *cfg;
	struct error e;
	int r = load(json, &cfg, &e);

	if (r != 0)
		fail_msg("expected the config to load, got %d: \"%s\"\n%s", r, e.msg, json);
	return cfg;
}

static void test_defaults(void **state)
{
	struct keyd_config *cfg = loaded("{" KMS_LOCAL "}");
	struct kms *k;

	(void)state;
	assert_int_equal(cfg->n_kms, 1);
	assert_int_equal(cfg->n_volumes, 0);
	assert_true(cfg->discover);
	assert_string_equal(cfg->socket_path, "/run/keyd/keyd.sock");
	assert_string_equal(cfg->control_group, "keyd");
	assert_int_equal(cfg->n_policy, 0);
	assert_int_equal(cfg->poll_interval_s, 300);
	assert_int_equal(cfg->poll_jitter_pct, 20);
	assert_int_equal(cfg->max_key_cache_age_s, 4 * 3600);
	assert_null(cfg->callback);
	assert_string_equal(cfg->audit_path, AUDIT_PATH_DEFAULT);
	assert_string_equal(cfg->node_key_file, SIGN_KEY_PATH_DEFAULT);
	k = config_find_kms(cfg, "local");
	assert_non_null(k);
	assert_string_equal(k->provider->name, "file");
	assert_int_equal(k->retry.try_timeout_ms, 10000);
	assert_int_equal(k->retry.backoff_min_ms, 500);
	assert_int_equal(k->retry.backoff_max_ms, 30000);
	assert_int_equal(k->retry.deadline_ms, 600000);
	assert_null(config_find_kms(cfg, "other"));
	config_free(cfg);
}

/* Every section with values of its own, read back as written. */
static void test_every_section(void **state)
{
	struct keyd_config *cfg = loaded(
		"{" KMS_LOCAL ", \"discover\": false,"
		" \"unlock\": {\"try_timeout_s\": 3, \"backoff_min_ms\": 20, \"backoff_max_s\": 4,"
		"             \"deadline_s\": 50},"
		" \"lifecycle\": {\"poll_interval_s\": 0, \"max_key_cache_age_s\": 60},"
		" \"control\": {\"socket\": \"/tmp/k.sock\", \"group\": \"adm\","
		"   \"policy\": [{\"users\": [\"root\"], \"groups\": [\"root\"],"
		"                \"operations\": [\"status\", \"release\"], \"volumes\": [\"pg\"]}]},"
		" \"audit\": {\"path\": \"/var/tmp/a.jsonl\", \"node_key_file\": \"/var/tmp/n.key\"},"
		" \"callback\": {\"listen\": \"127.0.0.1:8443\", \"cert_file\": \"/c.pem\","
		"   \"key_file\": \"/k.pem\", \"hmac_secret_file\": \"/h\"},"
		" \"volumes\": [{\"name\": \"pg\", \"device\": \"UUID=6a0d\", \"kms\": \"local\","
		"   \"key_id\": \"k1\", \"required\": false, \"on_revoke\": \"suspend\","
		"   \"erase_on_delete\": true, \"rekey_every_days\": 30,"
		"   \"stop_hooks\": [[\"/usr/bin/systemctl\", \"stop\", \"postgresql\"]],"
		"   \"start_hooks\": [[\"/bin/true\"]]},"
		"  {\"name\": \"logs\", \"device\": \"/dev/vdc\", \"kms\": \"local\", \"key_id\": \"k2\"}]}");
	struct volume_config *v;
	struct kms *k;

	(void)state;
	assert_false(cfg->discover);
	k = config_find_kms(cfg, "local");
	assert_int_equal(k->retry.try_timeout_ms, 3000);
	assert_int_equal(k->retry.backoff_min_ms, 20);
	assert_int_equal(k->retry.backoff_max_ms, 4000);
	assert_int_equal(k->retry.deadline_ms, 50000);
	assert_int_equal(cfg->poll_interval_s, 0);
	assert_int_equal(cfg->max_key_cache_age_s, 60);
	assert_string_equal(cfg->socket_path, "/tmp/k.sock");
	assert_string_equal(cfg->control_group, "adm");
	assert_int_equal(cfg->n_policy, 1);
	assert_int_equal(cfg->policy[0].n_uids, 1);
	assert_int_equal(cfg->policy[0].uids[0], 0);
	assert_int_equal(cfg->policy[0].n_gids, 1);
	assert_int_equal(cfg->policy[0].ops, (1u << CONTROL_STATUS) | (1u << CONTROL_RELEASE));
	assert_int_equal(cfg->policy[0].n_volumes, 1);
	assert_string_equal(cfg->policy[0].volumes[0], "pg");
	assert_string_equal(cfg->audit_path, "/var/tmp/a.jsonl");
	assert_string_equal(cfg->node_key_file, "/var/tmp/n.key");
	assert_non_null(cfg->callback);
	assert_string_equal(cfg->callback->listen, "127.0.0.1:8443");

	assert_int_equal(cfg->n_volumes, 2);
	v = config_find_volume(cfg, "pg");
	assert_non_null(v);
	assert_string_equal(v->device, "UUID=6a0d");
	assert_ptr_equal(v->kms, k);
	assert_string_equal(v->key_id, "k1");
	assert_false(v->required);
	assert_int_equal(v->on_revoke, ON_REVOKE_SUSPEND);
	assert_true(v->erase_on_delete);
	assert_int_equal(v->rekey_every_days, 30);
	assert_int_equal(v->n_stop_hooks, 1);
	assert_string_equal(v->stop_hooks[0].argv[0], "/usr/bin/systemctl");
	assert_string_equal(v->stop_hooks[0].argv[2], "postgresql");
	assert_null(v->stop_hooks[0].argv[3]);
	assert_int_equal(v->n_start_hooks, 1);
	v = config_find_volume(cfg, "logs");
	assert_true(v->required); /* the default: a volume is a boot dependency */
	assert_int_equal(v->on_revoke, ON_REVOKE_CLOSE);
	assert_false(v->erase_on_delete);
	assert_int_equal(v->rekey_every_days, 0);
	assert_int_equal(v->n_stop_hooks, 0);
	assert_null(config_find_volume(cfg, "nope"));
	config_free(cfg);
}

#define VOL(extra)                                                                                 \
	"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/dev/vdb\", \"kms\": "     \
	"\"local\", \"key_id\": \"k\"" extra "}]}"

/* Each bad config and the words its error must contain: the JSON path first. */
static const struct {
	const char *json;
	const char *error;
} bad[] = {
	{"[]", "top level must be an object"},
	{"{\"kms\": ", ":1:"},
	{"{" KMS_LOCAL ", \"discover\": true, \"discover\": false}", "duplicate"},
	{"{}", "kms: missing"},
	{"{" KMS_LOCAL ", \"colour\": 1}", "(top level).colour: unknown key"},
	{"{" KMS_LOCAL ", \"discover\": 1}", ".discover: must be true or false"},
	{"{\"kms\": []}", "kms: must be an object of named KMS connections"},
	{"{\"kms\": {\"a b\": {\"provider\": \"file\"}}}", "kms.a b: name must be 1-64 characters"},
	{"{\"kms\": {\"x\": 3}}", "kms.x: must be an object"},
	{"{\"kms\": {\"x\": {}}}", "kms.x.provider: missing"},
	{"{\"kms\": {\"x\": {\"provider\": \"hsm\"}}}",
	 "kms.x.provider: unknown provider \"hsm\" (known: file, keyprotect, vault"},
	{"{\"kms\": {\"x\": {\"provider\": \"file\"}}}", "kms.x.root_key_file: missing"},
	{"{\"kms\": {\"x\": {\"provider\": \"file\", \"root_key_file\": \"/k\", \"y\": 1}}}",
	 "kms.x.y: unknown key"},
	{"{\"kms\": {\"kp\": {\"provider\": \"keyprotect\", \"instance_id\": \"i\","
	 " \"api_key_file\": \"/a\"}}}",
	 "kms.kp.endpoints: missing"},
	{"{\"kms\": {\"v\": {\"provider\": \"vault\", \"endpoints\": [\"https://v:8200\"]}}}",
	 "kms.v: give exactly one of token_file and approle"},
	{"{" KMS_LOCAL ", \"unlock\": {\"try_timeout_s\": 0}}",
	 "unlock.try_timeout_s: must be between 1 and 300"},
	{"{" KMS_LOCAL ", \"unlock\": {\"backoff_min_ms\": 9}}",
	 "unlock.backoff_min_ms: must be between 10 and 60000"},
	{"{" KMS_LOCAL ", \"unlock\": {\"backoff_max_s\": 3601}}",
	 "unlock.backoff_max_s: must be between 1 and 3600"},
	{"{" KMS_LOCAL ", \"unlock\": {\"deadline_s\": 86401}}",
	 "unlock.deadline_s: must be between 1 and 86400"},
	{"{" KMS_LOCAL ", \"unlock\": {\"backoff_min_ms\": 2000, \"backoff_max_s\": 1}}",
	 "unlock.backoff_min_ms: larger than unlock.backoff_max_s"},
	{"{" KMS_LOCAL ", \"unlock\": {\"retries\": 3}}", "unlock.retries: unknown key"},
	{"{" KMS_LOCAL ", \"lifecycle\": {\"poll_interval_s\": 86401}}",
	 "lifecycle.poll_interval_s: must be between 0 and 86400"},
	{"{" KMS_LOCAL ", \"lifecycle\": {\"poll_jitter_pct\": 51}}",
	 "lifecycle.poll_jitter_pct: must be between 0 and 50"},
	{"{" KMS_LOCAL ", \"lifecycle\": {\"max_key_cache_age_s\": 0}}",
	 "lifecycle.max_key_cache_age_s: must be between 1 and 604800"},
	{"{" KMS_LOCAL ", \"lifecycle\": {\"poll\": 1}}", "lifecycle.poll: unknown key"},
	{"{" KMS_LOCAL ", \"control\": {\"socket\": \"keyd.sock\"}}",
	 "control.socket: must be an absolute path"},
	{"{" KMS_LOCAL ", \"control\": {\"mode\": 1}}", "control.mode: unknown key"},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": {}}}",
	 "control.policy: must be an array of at most 64 rules"},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": [{\"operations\": [\"status\"]}]}}",
	 "control.policy[0]: names no users and no groups"},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": [{\"users\": [\"no-such-user-here\"],"
	 " \"operations\": [\"status\"]}]}}",
	 "control.policy[0].users[0]: no user named \"no-such-user-here\""},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": [{\"groups\": [\"root\"]}]}}",
	 "control.policy[0].operations: must be a non-empty array"},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": [{\"groups\": [\"root\"],"
	 " \"operations\": [\"rekey\"]}]}}",
	 "control.policy[0].operations[0]: not one of status, unlock"},
	{"{" KMS_LOCAL ", \"control\": {\"policy\": [{\"groups\": [\"root\"],"
	 " \"operations\": [\"lock\"], \"volumes\": [\"-x\"]}]}}",
	 "control.policy[0].volumes[0]: must be a volume name"},
	{"{" KMS_LOCAL ", \"audit\": {\"path\": \"audit.jsonl\"}}",
	 "audit.path: must be an absolute path"},
	{"{" KMS_LOCAL ", \"audit\": {\"key\": \"/k\"}}", "audit.key: unknown key"},
	{"{" KMS_LOCAL ", \"callback\": {\"listen\": \"8443\", \"cert_file\": \"/c\","
	 " \"key_file\": \"/k\", \"hmac_secret_file\": \"/h\"}}",
	 "callback.listen: \"8443\" must be IPv4:PORT or [IPv6]:PORT"},
	{"{" KMS_LOCAL ", \"callback\": {\"listen\": \"127.0.0.1:1\"}}",
	 "callback.cert_file: missing"},
	{"{" KMS_LOCAL ", \"volumes\": {}}", "volumes: must be an array"},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"pg\"}]}", "volumes[0].device: missing"},
	{VOL(", \"colour\": 1"), "volumes[0].colour: unknown key"},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"-pg\", \"device\": \"/d\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}]}",
	 "volumes[0].name: \"-pg\" must be 1-64 characters"},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"pg\", \"device\": \"vdb\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}]}",
	 "volumes[0].device: \"vdb\" must be a path, UUID=, PARTUUID= or LABEL="},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": \"kp\","
	 " \"key_id\": \"k\"}]}",
	 "volumes[0].kms: no KMS named \"kp\" under \"kms\""},
	{VOL(", \"on_revoke\": \"shred\""),
	 "volumes[0].on_revoke: \"shred\" is not one of: close, suspend, audit-only"},
	{VOL(", \"required\": \"yes\""), "volumes[0].required: must be true or false"},
	{VOL(", \"rekey_every_days\": 3651"),
	 "volumes[0].rekey_every_days: must be between 0 and 3650"},
	{VOL(", \"stop_hooks\": [\"systemctl stop postgresql\"]"),
	 "volumes[0].stop_hooks[0]: must be a command as an array of strings"},
	{VOL(", \"start_hooks\": [[\"systemctl\"]]"),
	 "volumes[0].start_hooks[0][0]: \"systemctl\" must be an absolute path"},
	{VOL(", \"start_hooks\": [[\"/bin/true\", \"\"]]"),
	 "volumes[0].start_hooks[0][1]: must be a non-empty string"},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}, {\"name\": \"pg\", \"device\": \"/e\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}]}",
	 "volumes[1].name: \"pg\" is also volumes[0].name"},
	{"{" KMS_LOCAL ", \"volumes\": [{\"name\": \"a\", \"device\": \"/d\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}, {\"name\": \"b\", \"device\": \"/d\", \"kms\": \"local\","
	 " \"key_id\": \"k\"}]}",
	 "volumes[1].device: \"/d\" is also volumes[0].device"},
	/* Several KMS per volume. */
	{KMS2
	 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [\"local\", \"nope\"],"
	 " \"key_id\": \"k\"}]}",
	 "volumes[0].kms[1]: no KMS named \"nope\" under \"kms\""},
	{KMS2
	 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [\"local\", \"local\"],"
	 " \"key_id\": \"k\"}]}",
	 "volumes[0].kms: \"local\" is listed twice"},
	{KMS2
	 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [\"local\", \"other\"],"
	 " \"key_id\": [\"a\", \"b\", \"c\"]}]}",
	 "volumes[0].key_id: 3 key ids for 2 KMS (give one for all, or one per KMS)"},
	{KMS2 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [],"
	      " \"key_id\": \"k\"}]}",
	 "volumes[0].kms: must be a string or a list of 1 to 4 strings"},
	{KMS2
	 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\","
	 " \"kms\": [\"local\", \"other\", \"local\", \"other\", \"local\"], \"key_id\": \"k\"}]}",
	 "volumes[0].kms: must be a string or a list of 1 to 4 strings"},
	{KMS2 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [\"local\", 3],"
	      " \"key_id\": \"k\"}]}",
	 "volumes[0].kms[1]: must be a string of 1 to 64 characters"},
	{KMS2
	 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\", \"kms\": [\"local\", \"other\"],"
	 " \"key_id\": [\"a\", \"\"]}]}",
	 "volumes[0].key_id[1]: must be a string of 1 to 256 characters"},
	{KMS2 ", \"volumes\": [{\"name\": \"pg\", \"device\": \"/d\"}]}",
	 "volumes[0].kms: missing"},
};

static void test_errors_name_the_path(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct keyd_config *cfg;
		struct error e;
		int r = load(bad[i].json, &cfg, &e);

		if (r >= 0 || !strstr(e.msg, bad[i].error))
			fail_msg("config %zu: expected an error with \"%s\", got %d: \"%s\"\n%s", i,
				 bad[i].error, r, e.msg, bad[i].json);
		assert_null(cfg);
	}
}

static void test_file_errors(void **state)
{
	struct keyd_config *cfg = NULL;
	struct error e;
	char missing[128];
	FILE *f;

	(void)state;
	snprintf(missing, sizeof(missing), "%s/missing.json", dir);
	assert_int_equal(config_load(missing, &cfg, &e), -ENOENT);
	assert_non_null(strstr(e.msg, "cannot open"));
	assert_non_null(strstr(e.msg, missing));

	f = fopen(path, "w");
	assert_non_null(f);
	fputc('{', f);
	for (int i = 0; i < CONFIG_SIZE_MAX; i++)
		fputc(' ', f);
	fputc('}', f);
	fclose(f);
	assert_int_equal(config_load(path, &cfg, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "larger than 1048576 bytes"));
	assert_null(cfg);
}

/* A volume of several KMS: one key id for all, or one per KMS in order; kms and key_id name
 * the first. */
static void test_multi_kms_volume(void **state)
{
	struct keyd_config *cfg = loaded(
		KMS2
		", \"volumes\": [{\"name\": \"a\", \"device\": \"/d\", \"kms\": [\"other\", \"local\"],"
		" \"key_id\": [\"k-other\", \"k-local\"]},"
		" {\"name\": \"b\", \"device\": \"/e\", \"kms\": [\"local\", \"other\"], \"key_id\": \"k\"},"
		" {\"name\": \"c\", \"device\": \"/f\", \"kms\": \"local\", \"key_id\": \"k1\"}]}");
	struct volume_config *v;

	(void)state;
	v = config_find_volume(cfg, "a");
	assert_int_equal(v->n_keys, 2);
	assert_ptr_equal(v->keys[0].kms, config_find_kms(cfg, "other"));
	assert_string_equal(v->keys[0].key_id, "k-other");
	assert_ptr_equal(v->keys[1].kms, config_find_kms(cfg, "local"));
	assert_string_equal(v->keys[1].key_id, "k-local");
	assert_ptr_equal(v->kms, v->keys[0].kms);
	assert_string_equal(v->key_id, "k-other");
	v = config_find_volume(cfg, "b");
	assert_int_equal(v->n_keys, 2);
	assert_string_equal(v->keys[0].key_id, "k");
	assert_string_equal(v->keys[1].key_id, "k");
	v = config_find_volume(cfg, "c");
	assert_int_equal(v->n_keys, 1);
	assert_string_equal(v->key_id, "k1");
	config_free(cfg);
}

static void test_volume_names(void **state)
{
	static const char *const good[] = {"pg", "pg.data_1-a", "A", "0"};
	static const char *const nope[] = {"", ".pg", "-pg", "pg/data", "pg data", "pg\n"};
	char longest[VOLUME_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!volume_name_valid(good[i]))
			fail_msg("\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(nope) / sizeof(nope[0]); i++)
		if (volume_name_valid(nope[i]))
			fail_msg("\"%s\" accepted", nope[i]);
	memset(longest, 'a', VOLUME_NAME_MAX);
	longest[VOLUME_NAME_MAX] = 0;
	assert_true(volume_name_valid(longest));
	longest[VOLUME_NAME_MAX] = 'a';
	longest[VOLUME_NAME_MAX + 1] = 0;
	assert_false(volume_name_valid(longest));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_section),
		cmocka_unit_test(test_errors_name_the_path),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_volume_names),
		cmocka_unit_test(test_multi_kms_volume),
	};
	char cmd[64];
	int r;

	if (secmem_init(1 << 20) < 0 || !mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/keyd.json", dir);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
