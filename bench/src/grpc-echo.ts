/**
 * The gRPC service both grpc-js scripts share, defined without a .proto: one unary method whose request and
 * response are the raw payload bytes (identity serialize/deserialize), so no protobuf code runs at all.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';

/** ECHO_PATH is the gRPC method path of the echo call. */
export const ECHO_PATH = '/bench.Echo/Echo';

const identity = (bytes: Buffer): Buffer => bytes;

/** echoService is the generic service definition: Buffer in, the same Buffer out. */
export const echoService: ServiceDefinition = {
  Echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'echo',
  },
};

/** identitySerialize and identityDeserialize are the client's halves of the same passthrough. */
export const identitySerialize = identity;
export const identityDeserialize = identity;
