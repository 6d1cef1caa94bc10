// SPDX-License-Identifier: GPL-2.0-or-later
// Tencent Cloud's own SDK (tencentcloud-sdk-nodejs, KMS 2019-01-18) against kmsemu's Tencent
// KMS: encrypt, decrypt with the encryption context, re-encrypt, describe must all succeed; a
// wrong context and a wrong SecretKey must fail as Tencent Cloud fails.
// Usage: node check-tencent.mjs PORT (NODE_EXTRA_CA_CERTS: the emulator's CA; SECRET_ID,
// SECRET_KEY in the environment).
import https from "node:https";
import tls from "node:tls";
import assert from "node:assert/strict";
import tencentcloud from "tencentcloud-sdk-nodejs";

const port = Number(process.argv[2]);
const region = process.env.REGION || "ap-guangzhou";
// The SDK takes the signing service from the endpoint's first label and signs the host
// without a port, as on Tencent's own endpoints: so the endpoint is "kms.localhost" (port
// 443 implied), and this agent carries its connections to the emulator's port.
class ToEmulator extends https.Agent {
	createConnection(options, cb) {
		return tls.connect({ ...options, host: "127.0.0.1", port }, cb);
	}
}
const agent = new ToEmulator({ keepAlive: false });
const client = (secretKey) => new tencentcloud.kms.v20190118.Client({
	credential: { secretId: process.env.SECRET_ID, secretKey },
	region,
	profile: { httpProfile: { endpoint: "kms.localhost", agent, reqTimeout: 10 } },
});
const kms = client(process.env.SECRET_KEY);
const ctx = JSON.stringify({ "keyd:luks-uuid": "6a0d1e2f-0000-4000-8000-000000000001" });
const dek = Buffer.alloc(32, 7).toString("base64");

const created = await kms.CreateKey({ Alias: "sdk-check-" + process.pid });
const keyId = created.KeyId;
assert.equal(created.KeyState, "Enabled");
const d = await kms.DescribeKey({ KeyId: keyId });
assert.equal(d.KeyMetadata.KeyId, keyId);
assert.equal(d.KeyMetadata.KeyState, "Enabled");

const e = await kms.Encrypt({ KeyId: keyId, Plaintext: dek, EncryptionContext: ctx });
assert.equal(e.KeyId, keyId);
const p = await kms.Decrypt({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: ctx });
assert.equal(p.Plaintext, dek);
assert.equal(p.KeyId, keyId);

await assert.rejects(kms.Decrypt({ CiphertextBlob: e.CiphertextBlob,
	EncryptionContext: JSON.stringify({ "keyd:luks-uuid": "another" }) }),
	{ code: "FailedOperation.DecryptError" });

const same = await kms.ReEncrypt({ CiphertextBlob: e.CiphertextBlob, DestinationKeyId: keyId,
	SourceEncryptionContext: ctx, DestinationEncryptionContext: ctx });
assert.equal(same.ReEncrypted, false);
await kms.RotateKey({ KeyId: keyId });
const r = await kms.ReEncrypt({ CiphertextBlob: e.CiphertextBlob, DestinationKeyId: keyId,
	SourceEncryptionContext: ctx, DestinationEncryptionContext: ctx });
assert.equal(r.ReEncrypted, true);
assert.equal(r.SourceKeyId, keyId);
assert.equal((await kms.Decrypt({ CiphertextBlob: r.CiphertextBlob, EncryptionContext: ctx })).Plaintext, dek);
assert.ok((await kms.DescribeKey({ KeyId: keyId })).KeyMetadata.LastRotateTime > 0);

await kms.DisableKey({ KeyId: keyId });
await assert.rejects(kms.Encrypt({ KeyId: keyId, Plaintext: dek }), { code: "ResourceUnavailable.CmkDisabled" });
await kms.ScheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 });
assert.equal((await kms.DescribeKey({ KeyId: keyId })).KeyMetadata.KeyState, "PendingDelete");
await kms.CancelKeyDeletion({ KeyId: keyId });
await kms.EnableKey({ KeyId: keyId });

await assert.rejects(client(process.env.SECRET_KEY + "x").DescribeKey({ KeyId: keyId }),
	{ code: "AuthFailure.SignatureFailure" });
console.log("tencent sdk: encrypt, decrypt, re-encrypt, describe ok; wrong context and wrong secret refused");
