// The Node tests' daemon harness (the counterpart of harness.py): starts the
// real chorusd on 127.0.0.1 port 0 with a config written to a fresh temporary
// data dir, reads the port from its `event=ready` line (and, with flows,
// waits for `event=flows_loaded`), and stops it with SIGTERM expecting exit 0.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SRC = process.env.CHORUS_SOURCE_DIR || '.';

// config: the JSON config; opts.tag names the temp dir, opts.flows (default
// true) serves SRC/flows and waits until they are loaded, opts.env adds
// environment variables.
export function startDaemon(config, { tag = 'node', flows = true, env = {} } = {}) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `chorus-${tag}-`));
  const cfg = path.join(tmp, 'chorusd.json');
  writeFileSync(cfg, JSON.stringify(config));
  const args = ['--listen', '127.0.0.1:0', '--data-dir', tmp, '--config', cfg];
  if (flows) args.push('--flows', path.join(SRC, 'flows'));
  const proc = spawn(process.env.CHORUSD || 'build/chorusd', args,
    { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('not ready:\n' + stderr)); }, 60000);
    proc.stderr.on('data', (b) => {
      stderr += b.toString();
      const m = /event=ready .*\bport=(\d+)/.exec(stderr);
      if (m && !proc.port) proc.port = Number(m[1]);
      if (proc.port && (!flows || /event=flows_loaded/.test(stderr)) && !proc.started) {
        proc.started = true;
        clearTimeout(timer);
        resolve(proc);
      }
    });
    proc.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
    proc.stderrText = () => stderr;
    proc.reload = (next) => reloadDaemon(proc, cfg, next);
  });
}

// Writes config over the daemon's file, sends SIGHUP and resolves once the
// reload is applied (rejects when it is not, within 10 s).
function reloadDaemon(proc, cfg, config) {
  const applied = () => (proc.stderrText().match(/event=reload status=applied/g) || []).length;
  const before = applied();
  writeFileSync(cfg, JSON.stringify(config));
  proc.kill('SIGHUP');
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10000;
    const poll = () => {
      if (applied() > before) resolve();
      else if (Date.now() > deadline) reject(new Error('reload not applied:\n' + proc.stderrText()));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

export function stopDaemon(proc) {
  return new Promise((resolve, reject) => {
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}\n${proc.stderrText()}`))));
    proc.kill('SIGTERM');
  });
}
