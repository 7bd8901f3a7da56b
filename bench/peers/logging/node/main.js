// Logging benchmark, Node pino peer (bench/README.md, scenario 3).
//
// pino (pinned in bench/peers/logging/node/package.json, installed by
// bench/install-peers into build-bench/peers/node_modules) with
// pino.destination({dest: PATH, sync: false}): sonic-boom buffers lines in
// memory and writes them asynchronously, the closest to hostkit's queue and
// writer thread (but on the same thread: Node has one). Time ends when
// dest.flushSync() has written everything. pino's own formatter is JSON;
// pino has no text formatter of its own (pino-pretty is a separate, much
// slower transport), so only json is measured. One producer: Node's event
// loop is one thread.
//
// Usage: node main.js filtered N
//        node main.js file json 1 N PATH
'use strict';
const path = require('path');
const pino = require(path.join(process.env.HK_BENCH_NODE_MODULES || '', 'pino'));

const users = ['alice', 'bob', 'carol', 'dave'];
const a = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint());

if (a[0] === 'filtered') {
  const n = Number(a[1] || 100000000);
  const lg = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true }));
  const ts = [];
  for (let k = 0; k < 5; k++) {
    const t0 = now();
    for (let i = 0; i < n; i++)
      lg.debug({ Count: i, ElapsedMs: i * 0.5, User: users[i & 3] }, 'Processed items');
    ts.push((now() - t0) / n);
  }
  ts.sort((x, y) => x - y);
  console.log(JSON.stringify({ impl: 'pino', mode: 'filtered', n, tmpl_ns: ts[2] }));
} else if (a[0] === 'file' && a.length >= 5) {
  const [, format, threads, nStr, file] = a;
  if (format !== 'json' || threads !== '1') {
    console.error('pino peer: only json with 1 producer');
    process.exit(2);
  }
  const n = Number(nStr);
  const dest = pino.destination({ dest: file, sync: false, minLength: 4096 });
  dest.on('ready', () => {
    const lg = pino({ level: 'info', timestamp: pino.stdTimeFunctions.isoTime, base: null }, dest);
    const t0 = now();
    for (let i = 0; i < n; i++)
      lg.info({ Count: i, ElapsedMs: (i & 1023) * 0.25, User: users[i & 3] }, 'Processed items');
    const t1 = now();
    dest.flushSync();
    const t2 = now();
    dest.end();
    console.log(JSON.stringify({ impl: 'pino', mode: 'file', format, threads: 1, n,
      caller_ns: (t1 - t0) / n, calls_s: (t1 - t0) / 1e9, total_s: (t2 - t0) / 1e9, dropped: 0 }));
  });
} else {
  console.error('usage: node main.js filtered [N] | node main.js file json 1 N PATH');
  process.exit(2);
}
