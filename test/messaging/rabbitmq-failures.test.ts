import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, inject, it } from 'vitest';
import type { BrokerState, Delivery } from '../../src/messaging/broker.js';
import { publications } from '../helpers/events.js';
import { collector, makeEvents, waitFor } from './broker-contract.js';
import { shortString, startFrameInjector } from './frame-injector.js';
import { rabbitFixture } from './rabbitmq-fixture.js';
import { recordingLogger } from './recording-logger.js';

const url = inject('rabbitmqUrl');

describe.skipIf(!url)('RabbitMQ broker failures', () => {
  const rabbit = rabbitFixture(url);

  it('when RabbitMQ cannot be reached, then the outage is logged once, naming host and port only, and its end once', async () => {
    const logger = recordingLogger();
    const { broker, exchange, proxy } = await rabbit.proxiedBroker({ logger });
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(3));

    const target = `127.0.0.1:${proxy.port}`;
    const cannot = logger.withMessage('cannot connect to RabbitMQ; retrying with back-off');
    expect(cannot).toHaveLength(1);
    expect(cannot[0]).toMatchObject({ level: 'warn', obj: { target, err: expect.any(Error) } });
    expect(JSON.stringify(logger.lines.map((line) => line.obj.target))).not.toContain('guest');

    await proxy.restore();
    await waitFor(() => expect(broker.state()).toBe('up'));
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([{ level: 'info', obj: { target, exchange }, msg: 'connected to RabbitMQ' }]);
  });

  it('when the connection drops twice, then each loss is logged once, with the error, and it comes back each time', async () => {
    const logger = recordingLogger();
    const { broker, proxy } = await rabbit.proxiedBroker({ logger });
    await waitFor(() => expect(broker.state()).toBe('up'));
    const target = `127.0.0.1:${proxy.port}`;

    for (const outage of [1, 2]) {
      proxy.cut();
      const accepted = proxy.accepted;
      await waitFor(() => expect(proxy.accepted).toBeGreaterThan(accepted + 2));
      await proxy.restore();
      await waitFor(() => expect(broker.state()).toBe('up'));
      expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(outage);
      expect(logger.withMessage('connected to RabbitMQ')).toHaveLength(outage + 1);
    }
    // The loss already said it: failed attempts after it are not logged again.
    expect(logger.withMessage('cannot connect to RabbitMQ; retrying with back-off')).toEqual([]);
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]).toMatchObject({ level: 'warn', obj: { target, reason: expect.any(String) } });
    expect(logger.withMessage('RabbitMQ connection error')[0]).toMatchObject({ level: 'warn', obj: { target, err: expect.any(Error) } });
  });

  it('when it is connected again, then the back-off starts over from the first delay', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker({ reconnectMinMs: 50, reconnectMaxMs: 3200 });
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(5));
    await proxy.restore();
    await waitFor(() => expect(broker.state()).toBe('up'), 5000);

    proxy.cut();
    await waitFor(() => expect(broker.state()).not.toBe('up'));
    await proxy.restore();

    // The first delay is 25 to 50 ms; carried on from the outage before, it would be 1.6 to 3.2 s.
    await waitFor(() => expect(broker.state()).toBe('up'), 1500);
  });

  it('when the connection drops, then listeners hear each change of state once, ending up', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker();
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));
    await waitFor(() => expect(broker.state()).toBe('up'));

    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(3));
    await proxy.restore();
    await waitFor(() => expect(broker.state()).toBe('up'));

    expect(states[0]).toBe('up');
    expect(states.at(-1)).toBe('up');
    expect(states).toContain('down');
    expect(states).toContain('connecting');
    expect(states.filter((state, i) => state === states[i - 1])).toEqual([]);
  });

  it('when RabbitMQ stays away, then attempts are spaced between half and all of the delay, never more than the ceiling', async () => {
    const { proxy } = await rabbit.proxiedBroker({ reconnectMinMs: 400, reconnectMaxMs: 400 });
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(0));

    const first = proxy.accepted;
    await sleep(2000);

    // Delays of 200 to 400 ms: 5 to 10 in 2 s, and 10 only if every one were the shortest (a loaded machine makes fewer).
    expect(proxy.accepted - first).toBeGreaterThanOrEqual(3);
    expect(proxy.accepted - first).toBeLessThanOrEqual(9);
  });

  it('when the outage lasts, then the delay doubles from the first up to the ceiling', async () => {
    const { proxy } = await rabbit.proxiedBroker({ reconnectMinMs: 40, reconnectMaxMs: 160 });
    proxy.cut();
    await waitFor(() => expect(proxy.accepted).toBeGreaterThan(0));

    const first = proxy.accepted;
    await sleep(3000);

    // 20-40, 40-80, then 80-160 ms: about 25 attempts in 3 s; doubling without a ceiling, 8 at most.
    expect(proxy.accepted - first).toBeGreaterThanOrEqual(10);
    expect(proxy.accepted - first).toBeLessThanOrEqual(40);
  });

  it('when the exchange is deleted under it, then a publish fails, the channel error is logged, and it declares the exchange again', async () => {
    const logger = recordingLogger();
    const { broker, exchange } = await rabbit.upBroker({ logger });
    const admin = await rabbit.channel();
    await admin.deleteExchange(exchange);

    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/404|NOT_FOUND|closed/);

    await waitFor(() => expect(logger.withMessage('RabbitMQ publish channel error')).toHaveLength(1));
    expect(logger.withMessage('RabbitMQ publish channel error')[0]!.obj).toMatchObject({ err: { code: 404 } });
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]!.obj).toMatchObject({ reason: 'publish channel closed' });
    await waitFor(() => expect(broker.state()).toBe('up'));
    await admin.checkExchange(exchange);
    await broker.publish(publications(makeEvents(1)));
    await admin.close();
  });

  it('when the exchange exists with another type, then setup fails and is logged, it is never up, and it comes up once the exchange is gone', async () => {
    const logger = recordingLogger();
    const exchange = rabbit.newExchange();
    const admin = await rabbit.channel();
    await admin.assertExchange(exchange, 'direct', { durable: true });
    const { broker } = rabbit.newBroker({ exchange, logger });

    await waitFor(() => expect(logger.withMessage('RabbitMQ topology setup failed').length).toBeGreaterThan(1));
    expect(logger.withMessage('RabbitMQ topology setup failed')[0]!.obj).toMatchObject({ err: { code: 406 }, target: expect.any(String) });
    // The publish channel's close is what reports the loss first.
    expect(logger.withMessage('lost RabbitMQ; reconnecting')[0]!.obj).toMatchObject({ reason: 'publish channel closed' });
    expect(broker.state()).not.toBe('up');
    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/^RabbitMQ is (down|connecting); events not published$/);

    await admin.deleteExchange(exchange);
    await waitFor(() => expect(broker.state()).toBe('up'));
    await broker.publish(publications(makeEvents(1)));
    await admin.close();
  });

  it('when a declared queue exists with other arguments, then the setup error says how to resolve it, with the server error as cause', async () => {
    const logger = recordingLogger();
    const queue = rabbit.newQueue();
    const admin = await rabbit.channel();
    await admin.assertQueue(queue, { durable: true, arguments: { 'x-message-ttl': 1000 } });
    rabbit.newBroker({ logger, declareQueues: [queue] });

    await waitFor(() => expect(logger.withMessage('RabbitMQ topology setup failed').length).toBeGreaterThan(0));
    const { err } = logger.withMessage('RabbitMQ topology setup failed')[0]!.obj as { err: Error & { cause: { code: number } } };
    expect(err.message).toMatch(/PRECONDITION_FAILED/);
    expect(err.message).toContain(
      `. A queue's type is fixed when it is first declared: drain and delete queue ${queue}, or name a new one in RABBITMQ_CHANGELOG_QUEUE`,
    );
    expect(err.cause.code).toBe(406);
    await admin.close();
  });

  it('when a consumer cannot start on a live connection, then that is logged, and it starts once its queue can be declared', async () => {
    const logger = recordingLogger();
    const queue = rabbit.newQueue();
    const admin = await rabbit.channel();
    await admin.assertQueue(queue, { durable: true, arguments: { 'x-message-ttl': 60_000 } });
    const { broker } = await rabbit.upBroker({ logger });
    const received = collector();

    await broker.consume({ durable: true, queue, prefetch: 5 }, received.handler);

    expect(logger.withMessage('could not start the consumer; it starts after reconnecting')).toEqual([
      { level: 'warn', obj: { err: expect.objectContaining({ message: expect.stringContaining(`delete queue ${queue}`) }), queue }, msg: 'could not start the consumer; it starts after reconnecting' },
    ]);
    expect(logger.withMessage('RabbitMQ consumer channel error')[0]!.obj).toMatchObject({ err: { code: 406 }, queue });
    expect(logger.withMessage('lost RabbitMQ; reconnecting')).toHaveLength(1);
    await waitFor(() => expect(broker.state()).not.toBe('up'));

    await admin.deleteQueue(queue);
    await waitFor(() => expect(broker.state()).toBe('up'));
    const events = makeEvents(3);
    await broker.publish(publications(events));
    await waitFor(() => expect(received.ids()).toEqual(events.map((e) => e.id)));
    await admin.close();
  });

  it('when its queue is deleted under a consumer, then the cancel is logged, and after reconnecting the queue is back and consumed', async () => {
    const logger = recordingLogger();
    const queue = rabbit.newQueue();
    const { broker } = await rabbit.upBroker({ logger });
    const received = collector();
    await broker.consume({ durable: true, queue, prefetch: 5 }, received.handler);
    const admin = await rabbit.channel();

    await admin.deleteQueue(queue);

    await waitFor(() => expect(logger.withMessage('RabbitMQ cancelled the consumer')).toEqual([{ level: 'warn', obj: { queue }, msg: 'RabbitMQ cancelled the consumer' }]));
    await waitFor(() => expect(logger.withMessage('connected to RabbitMQ')).toHaveLength(2));
    await admin.checkQueue(queue);
    const events = makeEvents(2);
    await broker.publish(publications(events));
    await waitFor(() => expect(received.ids()).toEqual(events.map((e) => e.id)));
    await admin.close();
  });

  it('when RabbitMQ refuses a message, then publish rejects with the nack', async () => {
    const { broker, exchange } = await rabbit.upBroker();
    const queue = rabbit.newQueue();
    const admin = await rabbit.channel();
    await admin.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    await admin.bindQueue(queue, exchange, '#');

    await expect(broker.publish(publications(makeEvents(2)))).rejects.toThrow('message nacked');
    await admin.close();
  });

  it('when confirms stop coming, then publish rejects after the confirm timeout', async () => {
    const { broker, proxy } = await rabbit.proxiedBroker({ confirmTimeoutMs: 300 });
    await waitFor(() => expect(broker.state()).toBe('up'));
    proxy.blackhole();

    const started = performance.now();
    await expect(broker.publish(publications(makeEvents(1)))).rejects.toThrow(/^RabbitMQ did not confirm within 300 ms$/);
    expect(performance.now() - started).toBeLessThan(1500);
    await proxy.restore();
  });

  it('when it closes across a silent partition, then close gives up on RabbitMQ within seconds, and settling held deliveries meanwhile is logged, not thrown', async () => {
    const logger = recordingLogger();
    const { broker, proxy } = await rabbit.proxiedBroker({ logger, redeliveryDelayMs: 20 });
    await waitFor(() => expect(broker.state()).toBe('up'));
    const queue = rabbit.newQueue();
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue, prefetch: 2 }, (d) => void held.push(d));
    await broker.publish(publications(makeEvents(2)));
    await waitFor(() => expect(held).toHaveLength(2));
    proxy.blackhole();

    const started = performance.now();
    const closing = broker.close();
    await sleep(50);
    expect(() => held[0]!.ack()).not.toThrow();
    held[1]!.nack();
    await waitFor(() => expect(logger.withMessage('could not settle a delivery; it will be redelivered')).toHaveLength(2));
    await closing;

    expect(performance.now() - started).toBeLessThan(4000);
    expect(broker.state()).toBe('down');
    expect(logger.withMessage('could not settle a delivery; it will be redelivered')[0]!.obj).toMatchObject({ queue, err: expect.any(Error) });
    await proxy.restore();
  });

  it('when the connection is gone, then settling a held delivery logs nothing: RabbitMQ redelivers it anyway', async () => {
    const logger = recordingLogger();
    const { broker, proxy } = await rabbit.proxiedBroker({ logger, redeliveryDelayMs: 20 });
    await waitFor(() => expect(broker.state()).toBe('up'));
    const held: Delivery[] = [];
    await broker.consume({ durable: true, queue: rabbit.newQueue(), prefetch: 2 }, (d) => void held.push(d));
    await broker.publish(publications(makeEvents(2)));
    await waitFor(() => expect(held).toHaveLength(2));

    proxy.cut();
    await waitFor(() => expect(broker.state()).not.toBe('up'));
    held[0]!.ack();
    held[1]!.nack();
    await sleep(100);

    expect(logger.withMessage('could not settle a delivery; it will be redelivered')).toEqual([]);
  });

  it('when heartbeats stop across a silent partition, then the connection is dropped within a few heartbeats', async () => {
    const logger = recordingLogger();
    const { broker, proxy } = await rabbit.proxiedBroker({ logger, heartbeatSeconds: 1 });
    await waitFor(() => expect(broker.state()).toBe('up'));

    proxy.blackhole();

    await waitFor(() => expect(broker.state()).not.toBe('up'), 5000);
    expect(logger.withMessage('RabbitMQ connection error')[0]!.obj).toMatchObject({ err: { message: expect.stringMatching(/heartbeat/i) } });
    await proxy.restore();
  });

  it('when the URL names a heartbeat, then it wins over heartbeatSeconds', async () => {
    const target = new URL(url);
    target.searchParams.set('heartbeat', '1');
    const { broker, proxy } = await rabbit.proxiedBroker({ heartbeatSeconds: 600 });
    // proxiedBroker points the URL at the proxy; keep its port and add the heartbeat.
    await broker.close();
    target.port = String(proxy.port);
    const { broker: withUrlHeartbeat } = rabbit.newBroker({ url: target.toString(), heartbeatSeconds: 600 });
    await waitFor(() => expect(withUrlHeartbeat.state()).toBe('up'));

    proxy.blackhole();

    await waitFor(() => expect(withUrlHeartbeat.state()).not.toBe('up'), 5000);
    await proxy.restore();
  });

  it('when the URL names no port, then logs name the protocol default port (5672 for amqp, 5671 for amqps)', async () => {
    const plain = new URL(url);
    plain.port = '';
    const logger = recordingLogger();
    rabbit.newBroker({ url: plain.toString(), logger });
    await waitFor(() => expect(logger.withMessage('connected to RabbitMQ')).toHaveLength(1));
    expect(logger.withMessage('connected to RabbitMQ')[0]!.obj.target).toBe(`${plain.hostname}:5672`);

    const tls = new URL(url);
    tls.protocol = 'amqps:';
    tls.port = '';
    const tlsLogger = recordingLogger();
    rabbit.newBroker({ url: tls.toString(), logger: tlsLogger, connectTimeoutMs: 1000 });
    await waitFor(() => expect(tlsLogger.withMessage('cannot connect to RabbitMQ; retrying with back-off')).toHaveLength(1));
    expect(tlsLogger.withMessage('cannot connect to RabbitMQ; retrying with back-off')[0]!.obj.target).toBe(`${tls.hostname}:5671`);
  });

  it('when closed while still connecting, then it never comes up and leaves nothing on RabbitMQ', async () => {
    const logger = recordingLogger();
    const { broker, exchange, proxy } = await rabbit.proxiedBroker({ logger });
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));
    // Slow enough that the AMQP handshake alone takes over a second.
    proxy.latency(200);
    await waitFor(() => expect(proxy.accepted).toBe(1));
    await sleep(100);

    await broker.close();

    expect(states).toEqual(['down']);
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([]);
    const channel = await rabbit.channel();
    channel.on('error', () => {});
    await expect(channel.checkExchange(exchange)).rejects.toMatchObject({ code: 404 });
  });

  it('when closed while setting up its channels, then it never reports up', async () => {
    const logger = recordingLogger();
    const { broker, proxy } = await rabbit.proxiedBroker({ logger, connectTimeoutMs: 10_000 });
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));
    proxy.latency(300);
    // About three round trips of 600 ms for the handshake, then three for the setup: close during the setup.
    await sleep(2700);

    await broker.close();

    expect(states).toEqual(['down']);
    expect(logger.withMessage('connected to RabbitMQ')).toEqual([]);
  });

  it('when closed twice, then the second close does nothing', async () => {
    const { broker } = await rabbit.upBroker();
    const states: BrokerState[] = [];
    broker.onStateChange((state) => states.push(state));

    await broker.close();
    await broker.close();

    expect(states).toEqual(['down']);
  });
});

describe.skipIf(!url)('RabbitMQ flow control', () => {
  const rabbit = rabbitFixture(url);

  it('when RabbitMQ blocks and then unblocks publishes, then both are logged with the reason, and the state says blocked meanwhile', async () => {
    const target = new URL(url);
    const injector = await startFrameInjector({ host: target.hostname, port: Number(target.port || 5672) });
    target.port = String(injector.port);
    const logger = recordingLogger();
    const { broker } = rabbit.newBroker({ url: target.toString(), logger, heartbeatSeconds: 600 });
    await waitFor(() => expect(broker.state()).toBe('up'));

    const states: string[] = [];
    broker.onStateChange((state) => states.push(state));

    injector.sendMethod(10, 60, shortString('low on memory')); // connection.blocked
    await waitFor(() => expect(logger.withMessage('RabbitMQ is blocking publishes')).toEqual([{ level: 'warn', obj: { reason: 'low on memory' }, msg: 'RabbitMQ is blocking publishes' }]));
    // Blocked: /readyz says so, and the relay waits for 'up' instead of publishing into a connection that holds every confirm.
    expect(broker.state()).toBe('blocked');
    await expect(broker.publish([])).rejects.toThrow('RabbitMQ is blocked; events not published');
    injector.sendMethod(10, 61); // connection.unblocked
    await waitFor(() => expect(logger.withMessage('RabbitMQ accepts publishes again')).toEqual([{ level: 'info', obj: {}, msg: 'RabbitMQ accepts publishes again' }]));

    expect(broker.state()).toBe('up');
    expect(states).toEqual(['blocked', 'up']);
    await broker.close();
    await injector.close();
  });
});
