// SPDX-License-Identifier: GPL-2.0-or-later
// AWS's own SDK (@aws-sdk/client-kms) against kmsemu's AWS KMS: encrypt, decrypt with the
// encryption context, re-encrypt, describe must all succeed; a wrong context and a wrong
// secret must fail as AWS fails. Usage: node check-aws.mjs ENDPOINT (NODE_EXTRA_CA_CERTS set
// to the emulator's CA; AKID and SECRET in the environment).
import { KMSClient, EncryptCommand, DecryptCommand, ReEncryptCommand, DescribeKeyCommand,
	CreateKeyCommand, RotateKeyOnDemandCommand } from "@aws-sdk/client-kms";
import assert from "node:assert/strict";

const endpoint = process.argv[2];
const region = process.env.REGION || "us-east-1";
const client = (secret) => new KMSClient({ endpoint, region, maxAttempts: 1,
	credentials: { accessKeyId: process.env.AKID, secretAccessKey: secret } });
const kms = client(process.env.SECRET);
const ctx = { "keyd:luks-uuid": "6a0d1e2f-0000-4000-8000-000000000001" };
const dek = new Uint8Array(32).map((_, i) => i);

const created = await kms.send(new CreateKeyCommand({ Description: "sdk check" }));
const keyId = created.KeyMetadata.KeyId;
assert.equal(created.KeyMetadata.KeyState, "Enabled");

const d = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
assert.equal(d.KeyMetadata.KeyId, keyId);
assert.equal(d.KeyMetadata.KeyUsage, "ENCRYPT_DECRYPT");
assert.ok(d.KeyMetadata.CreationDate instanceof Date, "CreationDate is a timestamp");
const material1 = d.KeyMetadata.CurrentKeyMaterialId;

const e = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: dek, EncryptionContext: ctx }));
assert.equal(e.KeyId, d.KeyMetadata.Arn);
const p = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: e.CiphertextBlob,
	EncryptionContext: ctx }));
assert.deepEqual(Buffer.from(p.Plaintext), Buffer.from(dek));
assert.equal(p.KeyMaterialId, material1);

await assert.rejects(kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: e.CiphertextBlob,
	EncryptionContext: { "keyd:luks-uuid": "another" } })), { name: "InvalidCiphertextException" });
await assert.rejects(kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: e.CiphertextBlob })),
	{ name: "InvalidCiphertextException" });

await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
const r = await kms.send(new ReEncryptCommand({ CiphertextBlob: e.CiphertextBlob, SourceKeyId: keyId,
	DestinationKeyId: keyId, SourceEncryptionContext: ctx, DestinationEncryptionContext: ctx }));
assert.equal(r.SourceKeyMaterialId, material1);
assert.notEqual(r.DestinationKeyMaterialId, material1);
const p2 = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: r.CiphertextBlob,
	EncryptionContext: ctx }));
assert.deepEqual(Buffer.from(p2.Plaintext), Buffer.from(dek));

await assert.rejects(client(process.env.SECRET + "x").send(new DescribeKeyCommand({ KeyId: keyId })),
	{ name: "InvalidSignatureException" });
await assert.rejects(kms.send(new DescribeKeyCommand({ KeyId: "00000000-0000-4000-8000-000000000000" })),
	{ name: "NotFoundException" });
console.log("aws sdk: encrypt, decrypt, re-encrypt, describe ok; wrong context and wrong secret refused");
