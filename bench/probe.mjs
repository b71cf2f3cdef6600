// Preloaded (--import) into a server process by the bench: reports its memory over IPC on request.
import process from 'node:process';

if (process.send) {
  process.on('message', (message) => {
    if (!message || message.cmd !== 'memory') return;
    // Collected first, so that the heap figure is what is live, not what is waiting for the collector.
    if (typeof globalThis.gc === 'function') globalThis.gc();
    process.send({ type: 'memory', id: message.id, ...process.memoryUsage() });
  });
  // The channel must not keep a server alive after SIGTERM.
  process.channel?.unref();
}
