// Lifecycle benchmark, Node peer: 10 background services (async functions),
// each looping on its cancellation token (an AbortSignal) with a 1 s
// interval (timers/promises setTimeout, aborted by the signal); SIGTERM,
// SIGINT or SIGQUIT aborts the controller, the services return, main waits
// for them and exits 0. Prints the same lifetime lines as hostkit, on stderr.
// Run as `node main.js` (Node 20, no flags). Standard library only: no npm
// packages, so there is no package.json.
'use strict';
const { setTimeout: sleep } = require('node:timers/promises');

const SERVICES = 10;
const INTERVAL_MS = 1000;

async function service(signal) {
  while (!signal.aborted) {
    try {
      await sleep(INTERVAL_MS, undefined, { signal });
      // one unit of (no) work per interval
    } catch (err) {
      if (err.name !== 'AbortError') throw err;
    }
  }
}

async function main() {
  const controller = new AbortController();
  let stopRequested;
  const stopping = new Promise((resolve) => { stopRequested = resolve; });
  const onSignal = () => { controller.abort(); stopRequested(); };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT']) process.once(sig, onSignal);

  const running = [];
  for (let i = 0; i < SERVICES; i++) running.push(service(controller.signal));
  process.stderr.write('info: lifetime[0] Application started. Press Ctrl+C to shut down.\n' +
    'info: lifetime[0] Hosting environment: Production\n' +
    `info: lifetime[0] Content root path: ${process.cwd()}\n`);

  await stopping;
  process.stderr.write('info: lifetime[0] Application is shutting down...\n');
  await Promise.all(running);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT']) process.removeListener(sig, onSignal);
}

main().catch((err) => {
  process.stderr.write(`fail: lifetime[0] ${err.stack}\n`);
  process.exitCode = 1;
});
