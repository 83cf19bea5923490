// bench:registry's herald app, for the benches that repeat its workload
// (registry-passes.ts) or count its instructions (otel-count.driver.ts):
// `providers` @Injectable classes of 10 @OnEvent methods each, every method
// on its own event (`p<provider>`, `e<method>`), in an
// EventsModule.forRoot({ maxPending: 20,000 }) app, built with fresh classes
// on every call, as registry.bench.ts builds its herald side (whose timing
// code, one pass per process, is not reused).
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../../lib/index.js';

const METHODS = 10;

/** A started registry app and one pass of each kind over its events. */
export interface RegistryApp {
  /** Handlers (and distinct events): providers x 10. */
  events: number;
  app: INestApplicationContext;
  /** Every event once through postLocal, all handled. */
  localPass(): Promise<void>;
  /** Every event once through post, all awaited and handled. */
  postPass(): Promise<void>;
}

async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

/**
 * `providers` fresh @Injectable classes `Provider<p>`, each with 10 methods
 * `on<m>` that call `onCall`, method m of class p decorated by
 * `decorate(p, m)` (the side's @OnEvent, on its own event).
 */
export function handlerProviders(
  providers: number,
  decorate: (p: number, m: number) => MethodDecorator,
  onCall: () => void,
): Type[] {
  const classes: Type[] = [];
  for (let p = 0; p < providers; p++) {
    const cls = class {} as Type;
    Object.defineProperty(cls, 'name', { value: `Provider${p}` });
    for (let m = 0; m < METHODS; m++) {
      const name = `on${m}`;
      Object.defineProperty(cls.prototype, name, {
        value: function (): void {
          onCall();
        },
        writable: true,
        configurable: true,
      });
      Reflect.decorate(
        [decorate(p, m)],
        cls.prototype,
        name,
        Object.getOwnPropertyDescriptor(cls.prototype, name),
      );
    }
    Injectable()(cls);
    classes.push(cls);
  }
  return classes;
}

/** Builds and starts (init included, transport ready) a fresh registry app. */
export async function startRegistryApp(providers: number): Promise<RegistryApp> {
  let handled = 0;
  const classes = handlerProviders(
    providers,
    (p, m) => OnEvent(`p${p}`, `e${m}`),
    () => handled++,
  );
  @Module({
    imports: [EventsModule.forRoot({ logger: silentLogger, maxPending: 20_000 })],
    providers: classes,
  })
  class App {}
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const publisher = app.get(EventPublisher);
  await publisher.waitUntilReady();
  const names: [string, string][] = [];
  for (let p = 0; p < providers; p++)
    for (let m = 0; m < METHODS; m++) names.push([`p${p}`, `e${m}`]);
  const total = names.length;
  return {
    events: total,
    app,
    async localPass() {
      handled = 0;
      for (const [source, event] of names) publisher.postLocal(source, event, 1);
      await until(() => handled === total);
    },
    async postPass() {
      handled = 0;
      await Promise.all(names.map(([source, event]) => publisher.post(source, event, 1)));
      await until(() => handled === total);
    },
  };
}
