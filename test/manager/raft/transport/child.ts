// Child processes for grpc.test.ts. `stop`: two transports exchange messages
// and a snapshot, one peer stays unreachable, then both stop; the process must
// then exit by itself (a leftover socket, stream or timer keeps it alive).
// `serve`: a transport "B" that prints its address and runs until killed.
import { GrpcTransport, type TransportHandler } from '../../../../manager/raft/transport/index.js';
import { Message, MessageType, Snapshot, SnapshotMetadata } from '../../../../proto/gen/raft.js';
import { until } from '../../../lib/wait.js';

async function stopAndExit(): Promise<void> {
  let received = 0;
  let snapshotOk = false;
  const handler = (onSnap?: (ok: boolean) => void): TransportHandler => ({
    onMessage: () => void received++,
    onUnreachable: () => {},
    onSnapshotStatus: (_p, ok) => onSnap?.(ok),
  });
  const b = new GrpcTransport({ id: 'B', cluster: 'c', listen: '127.0.0.1:0' }, handler());
  const a = new GrpcTransport(
    { id: 'A', cluster: 'c', listen: '127.0.0.1:0', backoff: { initialMs: 50, maxMs: 200 } },
    handler((ok) => (snapshotOk = ok)),
  );
  const addrB = await b.start();
  await a.start();
  a.addPeer('B', addrB);
  a.addPeer('C', '127.0.0.1:1'); // nothing listens there: a peer in backoff at stop()
  b.addPeer('A', 'localhost:1');
  a.send([
    Message.create({ type: MessageType.MSG_APP, to: 'B', from: 'A' }),
    Message.create({ type: MessageType.MSG_APP, to: 'C', from: 'A' }),
  ]);
  a.send([
    Message.create({
      type: MessageType.MSG_SNAP,
      to: 'B',
      from: 'A',
      snapshot: Snapshot.create({ data: new Uint8Array(300_000), metadata: SnapshotMetadata.create({ index: 9, term: 1 }) }),
    }),
  ]);
  // On timeout the counts printed below tell the parent test what arrived.
  await until('both messages and the snapshot', () => received >= 2 && snapshotOk, { timeoutMs: 20_000, everyMs: 10 }).catch(
    () => undefined,
  );
  await Promise.all([a.stop(), b.stop()]);
  process.stdout.write(`received=${received} snapshot=${snapshotOk}\n`);
}

async function serve(): Promise<void> {
  // The cluster of grpc.test.ts's node(): B must accept A's batches, or the stream ends before the freeze.
  const b = new GrpcTransport(
    { id: 'B', cluster: 'test-cluster', listen: '127.0.0.1:0' },
    { onMessage: () => {}, onUnreachable: () => {}, onSnapshotStatus: () => {} },
  );
  process.stdout.write(`${await b.start()}\n`);
}

void (process.argv[2] === 'serve' ? serve() : stopAndExit());
