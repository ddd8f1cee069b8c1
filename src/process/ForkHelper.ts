/**
 * A small perl process that forks for us. Forking copies the parent's page tables: from `watch` holding
 * 10,000 versions (500 MB) each child (xz for a metadata tarball, flock for the writer lock) cost 10–30 ms of
 * CPU before it ran, more than the rest of a one-version publish. This helper is a few MB, so its forks are
 * cheap; it runs a command and hands back its output (up to a cap), and it takes and releases flock(2) on a
 * descriptor it inherited from us, which needs no child at all.
 *
 * perl-base is Essential in Debian, so it is on every host the package installs on; where perl cannot start,
 * `startForkHelper` fails and callers fork themselves, as before.
 *
 * The helper reads requests on its stdin and dies with us: at the end of its stdin it exits, and with it any
 * lock its descriptor held (that descriptor's open file description is ours too: see WriterLock).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Deferred, Effect, Exit, Scope } from "effect"

const script = String.raw`
use strict; use warnings; use Fcntl qw(:flock); use POSIX (); use IO::Select;
binmode STDIN; binmode STDOUT; $SIG{PIPE} = 'IGNORE';
my $lock;
sub get { my ($n) = @_; my $b = ''; while (length($b) < $n) { my $r = sysread(STDIN, $b, $n - length($b), length($b)); POSIX::_exit(0) unless $r } $b }
sub line { my $l = ''; while (1) { my $r = sysread(STDIN, my $c, 1); POSIX::_exit(0) unless $r; return $l if $c eq "\n"; $l .= $c } }
sub put { my $o = join('', @_); my $d = 0; while ($d < length $o) { my $w = syswrite(STDOUT, $o, length($o) - $d, $d); POSIX::_exit(0) unless defined $w; $d += $w } }
sub lockfh { $lock //= do { open(my $fh, '+<&=', 3) or return undef; $fh }; $lock }
while (1) {
  my @f = split /\0/, get(line()), -1;
  my $op = shift @f;
  if ($op eq 'trylock' || $op eq 'unlock') {
    my $fh = lockfh() or do { put("err no lock descriptor: $!\n"); next };
    if ($op eq 'unlock') { if (flock($fh, LOCK_UN)) { put("ok\n") } else { put("err $!\n") } }
    elsif (flock($fh, LOCK_EX | LOCK_NB)) { put("ok taken\n") }
    elsif ($!{EWOULDBLOCK} || $!{EAGAIN}) { put("ok busy\n") }
    else { put("err $!\n") }
  } elsif ($op eq 'run') {
    my $cap = shift @f;
    pipe(my $or, my $ow) or do { put("err pipe: $!\n"); next };
    pipe(my $er, my $ew) or do { put("err pipe: $!\n"); next };
    my $pid = fork();
    if (!defined $pid) { put("err fork: $!\n"); next }
    if ($pid == 0) {
      open(STDIN, '<', '/dev/null'); open(STDOUT, '>&', $ow); open(STDERR, '>&', $ew);
      POSIX::close(3);
      exec { $f[0] } @f;
      print STDERR "cannot run $f[0]: $!\n"; POSIX::_exit(127);
    }
    close $ow; close $ew;
    my ($out, $err, $over) = ('', '', 0);
    my $sel = IO::Select->new($or, $er);
    while (!$over && $sel->count) {
      for my $h ($sel->can_read) {
        my $r = sysread($h, my $buf, 65536);
        if (!$r) { $sel->remove($h); next }
        if (fileno($h) == fileno($or)) { $out .= $buf; $over = 1 if length($out) > $cap }
        elsif (length($err) < 65536) { $err .= $buf }
      }
    }
    kill 'KILL', $pid if $over;
    close $or; close $er;
    waitpid($pid, 0);
    my $st = $?;
    $out = '' if $over;
    put(sprintf("ok %d %d %d %d %d\n", $st >> 8, $st & 127, $over, length $out, length $err), $out, $err);
  } else { put("err unknown request $op\n") }
}
`

/** What a command gave: its status (or the signal that ended it), and its output unless it passed the cap. */
export interface RunResult {
  readonly code: number
  readonly signal: number
  /** The output passed the cap: the command was killed there and `stdout` is empty. */
  readonly over: boolean
  readonly stdout: Buffer
  readonly stderr: string
}

export interface ForkHelper {
  /** Runs `argv` with stdin from /dev/null; its stdout is kept up to `cap` bytes. */
  readonly run: (argv: ReadonlyArray<string>, cap: number) => Effect.Effect<RunResult, string>
  /** flock(LOCK_EX | LOCK_NB) on the descriptor handed over as `lockFd`. */
  readonly tryLock: Effect.Effect<"taken" | "busy", string>
  /** flock(LOCK_UN) on it. */
  readonly unlock: Effect.Effect<void, string>
  /** The helper still runs: once it is gone, its requests fail. */
  readonly alive: () => boolean
}

interface Waiting {
  readonly kind: "run" | "plain"
  readonly done: (outcome: Exit.Exit<{ readonly head: string; readonly body: Buffer }, string>) => void
}

/**
 * Starts the helper for the scope's life; `lockFd`, if given, becomes its fd 3 (the same open file
 * description, so a lock it takes is ours). Fails when perl cannot start.
 */
export const startForkHelper = (lockFd?: number): Effect.Effect<ForkHelper, string, Scope.Scope> =>
  Effect.gen(function* () {
    const child = yield* Effect.acquireRelease(
      Effect.async<ChildProcess, string>((resume) => {
        const stdio: Array<"pipe" | "ignore" | number> = ["pipe", "pipe", "ignore"]
        if (lockFd !== undefined) stdio.push(lockFd)
        const c = spawn("perl", ["-e", script], { stdio })
        c.once("error", (e) => resume(Effect.fail(`cannot start perl: ${e.message}`)))
        c.once("spawn", () => resume(Effect.succeed(c)))
      }),
      // the end of its stdin ends it; a kill makes sure
      (c) =>
        Effect.async<void>((done) => {
          if (c.exitCode !== null || c.signalCode !== null) return done(Effect.void)
          c.once("exit", () => done(Effect.void))
          c.stdin?.end()
          c.kill("SIGKILL")
        })
    )
    const waiting: Array<Waiting> = []
    let gone: string | undefined
    let buffered: Buffer = Buffer.alloc(0)
    const parse = () => {
      for (;;) {
        const w = waiting[0]
        const eol = buffered.indexOf(10)
        if (!w || eol < 0) return
        const head = buffered.subarray(0, eol).toString("utf8")
        let need = 0
        if (w.kind === "run" && head.startsWith("ok ")) {
          const [, , , , outLen, errLen] = head.split(" ")
          need = Number(outLen) + Number(errLen)
        }
        if (buffered.length < eol + 1 + need) return
        const body = Buffer.from(buffered.subarray(eol + 1, eol + 1 + need))
        buffered = buffered.subarray(eol + 1 + need)
        waiting.shift()
        w.done(Exit.succeed({ head, body }))
      }
    }
    child.stdout!.on("data", (d: Buffer) => {
      buffered = buffered.length === 0 ? d : Buffer.concat([buffered, d])
      parse()
    })
    child.once("exit", (code, signal) => {
      gone = `the fork helper (perl) exited (${signal ?? `status ${code}`})`
      for (const w of waiting.splice(0)) w.done(Exit.fail(gone))
    })
    child.stdin!.on("error", () => {}) // a helper gone is told by "exit"

    const request = (kind: Waiting["kind"], fields: ReadonlyArray<string>) =>
      Effect.flatMap(Deferred.make<{ readonly head: string; readonly body: Buffer }, string>(), (answer) =>
        Effect.suspend(() => {
          if (gone !== undefined) return Effect.fail(gone)
          const payload = Buffer.from(fields.join("\0"))
          waiting.push({ kind, done: (exit) => Deferred.unsafeDone(answer, exit) })
          child.stdin!.write(Buffer.concat([Buffer.from(`${payload.length}\n`), payload]))
          return Deferred.await(answer)
        })
      ).pipe(
        Effect.flatMap(({ head, body }) =>
          head.startsWith("ok") ? Effect.succeed({ head, body }) : Effect.fail(head.replace(/^err /, ""))
        )
      )

    const run = (argv: ReadonlyArray<string>, cap: number) =>
      Effect.map(request("run", ["run", String(cap), ...argv]), ({ head, body }) => {
        const [, code, signal, over, outLen] = head.split(" ").map(Number)
        return {
          code: code!,
          signal: signal!,
          over: over === 1,
          stdout: body.subarray(0, outLen),
          stderr: body.subarray(outLen).toString("utf8")
        }
      })
    return {
      run,
      tryLock: Effect.map(request("plain", ["trylock"]), ({ head }) => (head === "ok taken" ? "taken" : "busy")),
      unlock: Effect.asVoid(request("plain", ["unlock"])),
      alive: () => gone === undefined
    } satisfies ForkHelper
  })
