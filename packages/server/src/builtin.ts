/**
 * The built-in services: tunnelrpc.Health (after grpc.health.v1) and tunnelrpc.Reflection. Each is registered by
 * RpcServer unless its option turns it off.
 */
import { Health, Reflection, type ServiceDescription, type ServingStatus } from '@tunnelrpc/protocol';
import { describeMethod, splitMethod } from '@tunnelrpc/protocol/internal';
import type { MethodTable } from './dispatch.js';
import type { ServiceImpl } from './handler-types.js';

/** createHealth answers check() from the server's serving flag and its method table. @internal */
export function createHealth(methods: MethodTable, serving: () => boolean): ServiceImpl<typeof Health> {
  return {
    check: (input) => {
      const service = input?.service ?? '';
      const status: ServingStatus = serving() ? 'SERVING' : 'NOT_SERVING';
      if (service === '') return { status };
      for (const method of methods.entries()) {
        if (splitMethod(method.path).service === service) return { status };
      }
      return { status: 'NOT_FOUND' };
    },
  };
}

/** describeServices lists every registered service and method, in registration order, for Reflection.list. @internal */
export function describeServices(methods: MethodTable): ServiceDescription[] {
  const services = new Map<string, ServiceDescription>();
  for (const method of methods.entries()) {
    const { service, name } = splitMethod(method.path);
    let entry = services.get(service);
    if (entry === undefined) {
      entry = { name: service, methods: [] };
      services.set(service, entry);
    }
    entry.methods.push(describeMethod(name, method.spec));
  }
  return [...services.values()];
}

/** createReflection answers list() with describeServices, computed once per set of registered methods. @internal */
export function createReflection(methods: MethodTable): ServiceImpl<typeof Reflection> {
  let cached: { count: number; services: ServiceDescription[] } | undefined;
  return {
    list: () => {
      const count = methods.size;
      if (cached === undefined || cached.count !== count) cached = { count, services: describeServices(methods) };
      return { services: cached.services };
    },
  };
}
