// What a hand-written client sees of a TLS-requiring NBD server's option haggling, before and after STARTTLS:
// (option, reply type) pairs, so that qcow serve and qemu-nbd can be held to the same answers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { expect } from 'vitest';
import {
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_SERVER,
  RawNbdClient,
} from './raw-client.js';

/** The option haggling of a TLS-requiring server, as a hand-written client sees it. */
export async function haggleBeforeTls(address: { path: string }): Promise<{ answers: Array<[number, number]>; said: string }> {
  const client = await RawNbdClient.open(address);
  await client.greet();
  const name = Buffer.from('secret-name');
  const named = Buffer.concat([u32(name.length), name]);
  const meta = Buffer.concat([named, u32(1), u32(15), Buffer.from('base:allocation')]);
  const options: Array<[number, Buffer]> = [
    [NBD_OPT_LIST, Buffer.alloc(0)],
    [NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0)],
    [NBD_OPT_INFO, Buffer.concat([named, u16(0)])],
    [NBD_OPT_GO, Buffer.concat([named, u16(0)])],
    [NBD_OPT_LIST_META_CONTEXT, meta],
    [NBD_OPT_SET_META_CONTEXT, meta],
    [4242, Buffer.from('anything')],
    [NBD_OPT_STARTTLS, Buffer.from('x')],
  ];
  const answers: Array<[number, number]> = [];
  let said = '';
  for (const [option, data] of options) {
    for (const reply of await client.option(option, data)) {
      answers.push([reply.option, reply.type]);
      said += reply.data.toString('latin1');
    }
  }
  // EXPORT_NAME cannot be refused with a reply: the server hangs up, sending nothing.
  client.sendOption(NBD_OPT_EXPORT_NAME, name);
  await client.expectClosed();
  await expect(client.need(1)).rejects.toThrow();
  return { answers, said };
}

/** STARTTLS, the TLS handshake with the certificate in `clientDir`, then what LIST and a second STARTTLS answer. */
export async function haggleAfterTls(address: { path: string }, clientDir: string): Promise<{ answers: Array<[number, number]>; listed: string }> {
  const client = await RawNbdClient.open(address);
  await client.greet();
  const answers: Array<[number, number]> = [];
  const record = (replies: Array<{ option: number; type: number }>): void => {
    for (const reply of replies) answers.push([reply.option, reply.type]);
  };
  record(await client.option(NBD_OPT_STARTTLS));
  const certificate: ConnectionOptions = {
    ca: readFileSync(join(clientDir, 'ca-cert.pem')),
    cert: readFileSync(join(clientDir, 'client-cert.pem')),
    key: readFileSync(join(clientDir, 'client-key.pem')),
    servername: 'localhost',
  };
  await client.startTls(certificate);
  const list = await client.option(NBD_OPT_LIST);
  record(list);
  record(await client.option(NBD_OPT_STARTTLS));
  client.destroy();
  const server = list.find((reply) => reply.type === NBD_REP_SERVER)!.data;
  return { answers, listed: server.toString('utf8', 4, 4 + server.readUInt32BE(0)) };
}

export function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

export function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}
