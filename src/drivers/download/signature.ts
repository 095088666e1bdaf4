/**
 * Signature check as the reference does it (spec §7): the signed data is the ASCII hex digest of
 * the whole file; the signature is hex RSA-PSS over it with the same hash; keys under 3072 bits
 * are refused. A failed check deletes the file.
 */
import { constants, createHash, createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { InbmError, Status } from '../../core/result.js';

export type HashAlgorithm = 'sha256' | 'sha384' | 'sha512';
export const MIN_KEY_BITS = 3072;

export async function fileDigest(path: string, algorithm: HashAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A PEM certificate or public key, as provisioned for OTA signatures. */
export async function loadVerifyKey(pemFile: string): Promise<KeyObject> {
  const pem = await readFile(pemFile, 'utf8');
  const key = pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') {
    throw new InbmError(Status.INSTALL_FAILED, 'signature key must be RSA');
  }
  if (bits < MIN_KEY_BITS)
    throw new InbmError(Status.INSTALL_FAILED, `signature key has ${bits} bits, at least ${MIN_KEY_BITS} are required`);
  return key;
}

export async function checkSignature(
  path: string,
  signatureHex: string | undefined,
  key: KeyObject,
  algorithm: HashAlgorithm = 'sha384',
): Promise<void> {
  const fail = async (reason: string) => {
    await rm(path, { force: true });
    return new InbmError(Status.INSTALL_FAILED, `signature check failed: ${reason}`);
  };
  if (!signatureHex) throw await fail('a signature is required (an OTA certificate is provisioned)');
  if (!/^[0-9a-fA-F]+$/.test(signatureHex) || signatureHex.length % 2 !== 0) throw await fail('the signature is not hex');
  const digest = await fileDigest(path, algorithm);
  const ok = verify(
    algorithm,
    Buffer.from(digest, 'ascii'),
    { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
    Buffer.from(signatureHex, 'hex'),
  );
  if (!ok) throw await fail('the signature does not match the file');
}
