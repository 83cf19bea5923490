// npm run bench:local — in-process events/s of nest-herald against
// @nestjs/event-emitter 12, both inside a Nest application context:
//   (a) postLocal -> handler   vs  EventEmitter2.emit -> @OnEvent
//   (b) post -> handler         vs  EventEmitter2.emitAsync -> @OnEvent
// Each figure is the best of several rounds (the machine is shared and noisy).
// Both sides go through their Nest module, decorator and injectable.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventEmitter2,
  EventEmitterModule,
  OnEvent as OnEmitterEvent,
} from '@nestjs/event-emitter';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WINDOW = 1000; // posts in flight for the async variants

const payload = (i: number): { id: number; name: string; tags: string[] } => ({
  id: i,
  name: 'order-created',
  tags: ['a', 'b'],
});

let emitterCount = 0;

@Injectable()
class EmitterListener {
  @OnEmitterEvent('orders.created')
  onCreated(): void {
    emitterCount++;
  }
}

@Module({ imports: [EventEmitterModule.forRoot()], providers: [EmitterListener] })
class EmitterApp {}

let heraldCount = 0;

@Injectable()
class HeraldListener {
  @OnEvent('orders', 'created')
  onCreated(): void {
    heraldCount++;
  }
}

@Module({ imports: [EventsModule.forRoot({ logger: silentLogger })], providers: [HeraldListener] })
class HeraldApp {}

async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

async function best(run: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let round = 0; round < ROUNDS; round++) {
    (globalThis as { gc?: () => void }).gc?.();
    top = Math.max(top, await run());
  }
  return top;
}

async function timed(body: () => Promise<void> | void): Promise<number> {
  const start = process.hrtime.bigint();
  await body();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return EVENTS / seconds;
}

async function main(): Promise<void> {
  const emitterApp = await NestFactory.createApplicationContext(EmitterApp, { logger: false });
  await emitterApp.init();
  const emitter = emitterApp.get(EventEmitter2);

  const heraldApp = await NestFactory.createApplicationContext(HeraldApp, { logger: false });
  await heraldApp.init();
  const bus = heraldApp.get(EventPublisher);
  await bus.waitUntilReady();

  const emitSync = await best(() =>
    timed(() => {
      emitterCount = 0;
      for (let i = 0; i < EVENTS; i++) emitter.emit('orders.created', payload(i));
      if (emitterCount !== EVENTS) throw new Error(`emitter delivered ${emitterCount}`);
    }),
  );
  const postLocal = await best(() =>
    timed(async () => {
      heraldCount = 0;
      for (let i = 0; i < EVENTS; i += WINDOW) {
        for (let j = i; j < i + WINDOW && j < EVENTS; j++)
          bus.postLocal('orders', 'created', payload(j));
        await waitFor(() => heraldCount >= i);
      }
      await waitFor(() => heraldCount === EVENTS);
      if (heraldCount !== EVENTS) throw new Error(`herald delivered ${heraldCount}`);
    }),
  );
  const emitAsync = await best(() =>
    timed(async () => {
      emitterCount = 0;
      for (let i = 0; i < EVENTS; i += WINDOW) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < i + WINDOW && j < EVENTS; j++)
          batch.push(emitter.emitAsync('orders.created', payload(j)));
        await Promise.all(batch);
      }
      if (emitterCount !== EVENTS) throw new Error(`emitter delivered ${emitterCount}`);
    }),
  );
  const post = await best(() =>
    timed(async () => {
      heraldCount = 0;
      for (let i = 0; i < EVENTS; i += WINDOW) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < i + WINDOW && j < EVENTS; j++)
          batch.push(bus.post('orders', 'created', payload(j)));
        await Promise.all(batch);
      }
      await waitFor(() => heraldCount === EVENTS);
      if (heraldCount !== EVENTS) throw new Error(`herald delivered ${heraldCount}`);
    }),
  );

  await heraldApp.close();
  await emitterApp.close();

  const fmt = (n: number): string => `${Math.round(n).toLocaleString('en-US')} events/s`;
  console.log(`events per run: ${EVENTS}, best of ${ROUNDS} rounds, node ${process.version}`);
  console.log(`(a) herald postLocal -> handler      ${fmt(postLocal)}`);
  console.log(`(a) event-emitter emit -> @OnEvent   ${fmt(emitSync)}`);
  console.log(`(b) herald post -> handler           ${fmt(post)}`);
  console.log(`(b) event-emitter emitAsync          ${fmt(emitAsync)}`);
  console.log(`herald/event-emitter (b, post/emitAsync) = ${(post / emitAsync).toFixed(1)}x`);
  console.log(`herald/event-emitter = ${(postLocal / emitSync).toFixed(1)}x`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});
