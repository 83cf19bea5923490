// Run by Vitest (test/e2e/nest/vitest.e2e.spec.ts): nest-herald/testing
// without Jest, with Vitest's own expect and asymmetric matchers.
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { EventPublisher, OnEvent, silentLogger } from '../../lib/index.js';
import {
  EventExpectationError,
  EventsTestingModule,
  HeraldTestKit,
} from '../../lib/testing/index.js';

@Injectable()
class Signups {
  constructor(private readonly events: EventPublisher) {}
  async signUp(email: string): Promise<void> {
    await this.events.post('users', 'signed-up', { email, at: 1 });
  }
}

@Injectable()
class Welcome {
  readonly greeted: string[] = [];
  @OnEvent('users', 'signed-up')
  greet(data: { email: string }): void {
    this.greeted.push(data.email);
  }
}

describe('nest-herald/testing under Vitest', () => {
  it('records posts, matches with Vitest matchers, waits, delivers', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [EventsTestingModule.forRoot({ logger: silentLogger })],
      providers: [Signups, Welcome],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    const kit = app.get(HeraldTestKit);
    await app.get(Signups).signUp('ada@example.com');
    await kit.whenIdle();
    kit.expectPosted('users', 'signed-up', expect.objectContaining({ email: expect.any(String) }));
    expect(() => kit.expectPosted('users', 'deleted')).toThrow(EventExpectationError);
    expect(app.get(Welcome).greeted).toEqual(['ada@example.com']);
    expect(
      await kit.deliver('users', 'signed-up', { email: 'bob@example.com' }, { attempt: 3 }),
    ).toEqual({
      outcome: 'ack',
    });
    expect(app.get(Welcome).greeted).toEqual(['ada@example.com', 'bob@example.com']);
    await app.close();
  });
});
