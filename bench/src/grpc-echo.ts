/**
 * The gRPC service both grpc-js scripts share, defined without a .proto: one unary method. Bytes payloads travel
 * as the raw gRPC message (identity serialize/deserialize, no codec runs at all); strings and objects as a
 * MessagePack message (msgpackr pack/unpack, the codec tunnelrpc uses), since a generic method has no protobuf
 * schema. Both ends decode the message to a value and encode it again, as tunnelrpc does.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { Packr, Unpackr } from 'msgpackr';
import { PAYLOADS, type PayloadName } from './payload.js';

/** ECHO_PATH is the gRPC method path of the echo call. */
export const ECHO_PATH = '/bench.Echo/Echo';

/** EchoCodec turns a payload value into a gRPC message and back. */
export interface EchoCodec {
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

const identity: EchoCodec = { serialize: (value) => value as Buffer, deserialize: (bytes) => bytes };
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, moreTypes: false });
const msgpack: EchoCodec = { serialize: (value) => packr.pack(value), deserialize: (bytes) => unpackr.unpack(bytes) as unknown };

/** echoCodec is the codec of payload `name`: identity for bytes, msgpackr for strings and objects. */
export function echoCodec(name: PayloadName): EchoCodec {
  return PAYLOADS[name].shape === 'bytes' ? identity : msgpack;
}

/** createEchoService returns the generic service definition for payload `name`. */
export function createEchoService(name: PayloadName): ServiceDefinition {
  const codec = echoCodec(name);
  return {
    Echo: {
      path: ECHO_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: codec.serialize,
      requestDeserialize: codec.deserialize,
      responseSerialize: codec.serialize,
      responseDeserialize: codec.deserialize,
      originalName: 'echo',
    },
  };
}
