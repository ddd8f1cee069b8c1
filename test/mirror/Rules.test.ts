/**
 * The mirror rules with plain values and the TestClock: the config tables, the push plan (which files, which
 * rsync runs, in what order), the queue's coalescing and backoff, and the status `mirror status` shows.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Either, Fiber, Ref, TestClock } from "effect"
import { parseConfigText } from "../../src/config/AppConfig.js"
import { mirrorTargets } from "../../src/mirror/MirrorConfig.js"
import { catalogFiles, leavingProducts, protectRules, pushSteps, rshCommand } from "../../src/mirror/MirrorPlan.js"
import { MirrorPushError } from "../../src/mirror/MirrorPush.js"
import { type MirrorDriver, startMirror } from "../../src/mirror/MirrorQueue.js"
import { backoffMs, failed, initialState, type MirrorState, offered, parseState, stateText, statusOf, statusTable, succeeded } from "../../src/mirror/MirrorState.js"
import type { Images } from "../../src/simplestreams/Streams.js"

const config = (text: string) => parseConfigText("/etc/lis.toml", text)
const reason = (text: string) => Either.match(config(text), { onLeft: (e) => e.message, onRight: () => "accepted" })

describe("[mirrors.NAME] tables", () => {
  it("settles every key, the original's included", () => {
    const file = Either.getOrThrow(
      config(
        [
          "[mirrors.eu1]", 'host = "eu1.example.com"', 'user = "lxdadm"', 'key_path = "/etc/k"', "port = 2222",
          'root_dir = "/srv/www"', 'known_hosts = "/var/lib/kh"', "accept_new_host_key = true",
          "[mirrors.old]", 'remote = "up@old.example.com"',
          "[mirrors.byurl]", 'url = "https://images.example.org/"'
        ].join("\n")
      )
    )
    expect(mirrorTargets(file.mirrors, "/var/lib/lxd-image-server/")).toEqual([
      { name: "byurl", host: "images.example.org", user: "lxdadm", port: 22, keyPath: undefined, rootDir: "/var/www/simplestreams", knownHosts: "/var/lib/lxd-image-server/known_hosts", acceptNewHostKey: false },
      { name: "eu1", host: "eu1.example.com", user: "lxdadm", port: 2222, keyPath: "/etc/k", rootDir: "/srv/www", knownHosts: "/var/lib/kh", acceptNewHostKey: true },
      { name: "old", host: "old.example.com", user: "up", port: 22, keyPath: undefined, rootDir: "/var/www/simplestreams", knownHosts: "/var/lib/lxd-image-server/known_hosts", acceptNewHostKey: false }
    ])
  })

  it("refuses a bad value with the key, its line and the reason", () => {
    expect(reason('verbose = true\n[mirrors.eu1]\nhost = "a"\nport = 0\n')).toBe(
      "config file /etc/lis.toml, line 4: mirrors.eu1.port: Expected a number between 1 and 65535, actual 0"
    )
    expect(reason('[mirrors.eu1]\nuser = "x"\n')).toBe(
      "config file /etc/lis.toml, line 1: mirrors.eu1: no host: set host (or the original's remote, or url)"
    )
    expect(reason('[mirrors.eu1]\nhost = "h"\nhots = 1\n')).toMatch(/^config file \/etc\/lis.toml, line 3: unknown key 'mirrors.eu1.hots' \(known keys of a mirror: host, remote, url, user, key_path, port/)
    expect(reason('[mirrors."a b"]\nhost = "h"\n')).toMatch(/mirrors.a b: Expected a mirror name of letters, digits, _ and -/)
    expect(reason('[mirrors.eu1]\nurl = "not a url"\n')).toMatch(/url: "not a url" is not a URL with a host/)
    expect(reason('[mirrors.eu1]\nhost = "h:22"\n')).toMatch(/host: Expected a host name or address, without spaces, quotes or a port/)
    expect(reason('[mirrors.eu1]\nhost = "h"\naccept_new_host_key = "yes"\n')).toMatch(/line 3: mirrors.eu1.accept_new_host_key: Expected boolean/)
  })
})

const item = (path: string) => ({ ftype: "squashfs", path, sha256: "a".repeat(64), size: 1 })
const images: Images = {
  content_id: "images",
  datatype: "image-downloads",
  format: "products:1.0",
  products: {
    "debian:bookworm:amd64:default": {
      aliases: "debian/bookworm", arch: "amd64", os: "Debian", release: "bookworm", release_title: "bookworm", variant: "default",
      versions: {
        "20240101_10:00": { items: { "lxd.tar.xz": item("images/debian/b/20240101_10:00/lxd.tar.xz"), "incus.tar.xz": item("images/debian/b/20240101_10:00/lxd.tar.xz"), "root.squashfs": item("images/debian/b/20240101_10:00/rootfs.squashfs") } },
        "20240102_10:00": { items: { "lxd.tar.xz": item("images/debian/b/20240102_10:00/lxd.tar.xz"), "root.squashfs": item("images/debian/b/20240102_10:00/rootfs[1].squashfs") } }
      }
    }
  }
} as unknown as Images

const target = { name: "eu1", host: "eu1.example.com", user: "lxdadm", port: 22, keyPath: "/etc/my key", rootDir: "/var/www/simplestreams", knownHosts: "/var/lib/kh", acceptNewHostKey: false }
const sources = {
  webRoot: "/srv/www", imagesPath: "images", streamsPath: "streams/v1", snapshotRoot: "/st/snap", narrowedIndexRoot: undefined,
  filesList: "/st/files", protectFile: "/st/protect", controlPath: undefined, page: false
}

describe("the push plan", () => {
  it("sends each file of the catalog once, and protects exactly those from deletion", () => {
    const files = catalogFiles(images)
    expect(files).toEqual([
      "images/debian/b/20240101_10:00/lxd.tar.xz",
      "images/debian/b/20240101_10:00/rootfs.squashfs",
      "images/debian/b/20240102_10:00/lxd.tar.xz",
      "images/debian/b/20240102_10:00/rootfs[1].squashfs"
    ])
    expect(protectRules(files, "images")).toBe(
      "P /debian/b/20240101_10:00/lxd.tar.xz\nP /debian/b/20240101_10:00/rootfs.squashfs\nP /debian/b/20240102_10:00/lxd.tar.xz\nP /debian/b/20240102_10:00/rootfs\\[1].squashfs\n"
    )
  })

  it("pins host keys, never prompts, and accepts a new key only when asked", () => {
    expect(rshCommand(target)).toBe(
      "ssh -p 22 -i '/etc/my key' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/kh -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3"
    )
    expect(rshCommand({ ...target, acceptNewHostKey: true })).toContain("StrictHostKeyChecking=accept-new")
  })

  it("files first (renamed into place once whole), images.json, then index.json, deletions last", () => {
    const steps = pushSteps(target, sources)
    expect(steps.map((s) => s.what)).toEqual(["image files", "images.json", "index.json", "deletion of files gone from the primary and the catalog"])
    const [files, imagesJson, indexJson, deletion] = steps.map((s) => s.args)
    expect(files).toEqual(expect.arrayContaining(["--from0", "--files-from=/st/files", "--delay-updates", "/srv/www/", "lxdadm@eu1.example.com:/var/www/simplestreams/"]))
    expect(files).not.toContain("--delete")
    expect(imagesJson!.slice(-3)).toEqual(["--relative", "/st/snap/./streams/v1/images.json", "lxdadm@eu1.example.com:/var/www/simplestreams/"])
    expect(indexJson!.slice(-2)).toEqual(["/st/snap/./streams/v1/index.json", "lxdadm@eu1.example.com:/var/www/simplestreams/"])
    // what the primary no longer has and the catalog does not name: nothing sent, nothing created
    expect(deletion).toEqual(expect.arrayContaining(["--delete", "--existing", "--ignore-existing", "--filter=merge /st/protect", "/srv/www/images/", "lxdadm@eu1.example.com:/var/www/simplestreams/images/"]))
    for (const args of steps.map((s) => s.args)) expect(args.some((a) => a === "-z" || a === "--compress")).toBe(false)
  })

  it("takes leaving products out of the mirror's index before images.json changes", () => {
    expect(leavingProducts(["a", "b", "c"], ["a", "c", "d"])).toEqual(["b"])
    const steps = pushSteps({ ...target, rootDir: "/" }, { ...sources, narrowedIndexRoot: "/st/narrow" })
    expect(steps.map((s) => s.what).slice(0, 3)).toEqual(["image files", "index.json without the products leaving", "images.json"])
    // rrsync's root: "/" is the folder the key is limited to
    expect(steps[1]!.args.slice(-2)).toEqual(["/st/narrow/./streams/v1/index.json", "lxdadm@eu1.example.com:/"])
    expect(steps[4]!.args.at(-1)).toBe("lxdadm@eu1.example.com:/images/")
  })

  it("sends the catalog page, when there is one, with images.json", () => {
    const withPage = pushSteps(target, { ...sources, page: true }).find((s) => s.what === "images.json and the catalog page")!
    expect(withPage.args.slice(-4)).toEqual(["--relative", "/st/snap/./index.html", "/st/snap/./streams/v1/images.json", "lxdadm@eu1.example.com:/var/www/simplestreams/"])
    expect(pushSteps(target, sources).flatMap((s) => s.args).some((a) => a.endsWith("index.html"))).toBe(false)
  })
})

describe("a mirror's state", () => {
  it("backs off exponentially, capped", () => {
    expect([1, 2, 3, 4, 5, 8, 9, 50].map((n) => backoffMs(n, { baseMs: 1000, capMs: 60_000 }))).toEqual([1000, 2000, 4000, 8000, 16000, 60000, 60000, 60000])
  })

  it("is in sync, pushing (behind) or failing, with its lag in generations and seconds", () => {
    const t0 = 1_000_000
    let s = offered(initialState, { number: 3, at: t0 })
    s = succeeded(s, 3, t0 + 5_000, ["p"])
    expect(statusOf("eu1", s, { generation: 3, at: t0 }, t0 + 9_000, false)).toEqual({ name: "eu1", state: "in-sync", generation: 3, lag_generations: 0, lag_seconds: 0, last_error: null })
    s = offered(s, { number: 4, at: t0 + 10_000 })
    s = offered(s, { number: 5, at: t0 + 20_000 })
    expect(statusOf("eu1", s, { generation: 5, at: t0 + 20_000 }, t0 + 30_000, false)).toMatchObject({ state: "pushing", lag_generations: 2, lag_seconds: 20 })
    s = failed(s, "ssh: connect to host eu1 port 22: Connection refused", t0 + 31_000)
    expect(statusOf("eu1", s, { generation: 5, at: t0 + 20_000 }, t0 + 40_000, false)).toEqual({
      name: "eu1", state: "failing", generation: 3, lag_generations: 2, lag_seconds: 30, last_error: "ssh: connect to host eu1 port 22: Connection refused"
    })
    s = succeeded(s, 5, t0 + 50_000, ["p"])
    expect(statusOf("eu1", s, { generation: 5, at: t0 + 20_000 }, t0 + 60_000, false)).toMatchObject({ state: "in-sync", lag_generations: 0, last_error: null })
    expect(parseState(stateText(s))).toEqual(s)
    expect(parseState("{not json")).toEqual(initialState)
    expect(statusTable([statusOf("eu1", s, undefined, t0, false)])).toBe("MIRROR  STATE    GENERATION  LAG  LAST ERROR\neu1     in-sync  5           0\n")
  })
})

describe("a mirror's queue", () => {
  const gen = (number: number) => ({ number, at: number * 1000 })
  /** A driver whose state lives in `saved`, with nobody else pushing. */
  const memoryDriver = (saved: Ref.Ref<MirrorState>, push: MirrorDriver["push"]): MirrorDriver => ({
    update: (change) => Ref.updateAndGet(saved, change),
    exclusive: (effect) => effect,
    push
  })

  it.scoped("pushes the newest generation only, once per wake-up, and never blocks the one who offers", () =>
    Effect.gen(function* () {
      const pushes = yield* Ref.make<ReadonlyArray<number>>([])
      const saved = yield* Ref.make<MirrorState>(initialState)
      const release = yield* Deferred.make<void>()
      let current: () => number = () => -1
      const queue = yield* startMirror("eu1", memoryDriver(saved, () => Effect.gen(function* () {
        yield* Ref.update(pushes, (p) => [...p, current()])
        yield* Deferred.await(release)
        return []
      })))
      current = () => Effect.runSync(queue.state).wanted ?? -1
      yield* queue.offer(gen(1))
      yield* TestClock.adjust("1 millis")
      // generations 2..5 arrive while generation 1 is being pushed: one push of 5 follows, not four
      for (const n of [2, 3, 4, 5]) yield* queue.offer(gen(n))
      yield* Deferred.succeed(release, undefined)
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(pushes)).toEqual([1, 5])
      expect(yield* Ref.get(saved)).toMatchObject({ generation: 5, wanted: 5, pushing: null, failures: 0 })
    })
  )

  it.scoped("retries a failed push after a capped, doubling wait, with the newest generation", () =>
    Effect.gen(function* () {
      const attempts = yield* Ref.make(0)
      const queue = yield* startMirror(
        "eu1",
        memoryDriver(yield* Ref.make<MirrorState>(initialState), () =>
          Ref.updateAndGet(attempts, (n) => n + 1).pipe(
            Effect.flatMap((n) => (n <= 4 ? Effect.fail(new MirrorPushError({ mirror: "eu1", step: "image files", reason: "Connection refused" })) : Effect.succeed([])))
          )
        ),
        { baseMs: 1000, capMs: 3000 }
      )
      yield* queue.offer(gen(1))
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(attempts)).toBe(1)
      expect(yield* queue.state).toMatchObject({ failures: 1, last_error: "mirror eu1: image files: Connection refused" })
      yield* queue.offer(gen(2))
      yield* TestClock.adjust("999 millis")
      expect(yield* Ref.get(attempts)).toBe(2)
      yield* TestClock.adjust("2 seconds")
      expect(yield* Ref.get(attempts)).toBe(3)
      // 4 s would be next; the cap is 3 s
      yield* TestClock.adjust("3 seconds")
      expect(yield* Ref.get(attempts)).toBe(4)
      yield* TestClock.adjust("3 seconds")
      expect(yield* Ref.get(attempts)).toBe(5)
      expect(yield* queue.state).toMatchObject({ generation: 2, failures: 0, last_error: null })
    })
  )

  it.scoped("a push interrupted (SIGTERM, reload) leaves no push in progress behind", () =>
    Effect.gen(function* () {
      const saved = yield* Ref.make<MirrorState>(initialState)
      const fiber = yield* Effect.fork(
        Effect.scoped(
          Effect.gen(function* () {
            const queue = yield* startMirror("eu1", memoryDriver(saved, () => Effect.never))
            yield* queue.offer(gen(1))
            yield* Effect.never
          })
        )
      )
      yield* TestClock.adjust("1 millis")
      expect((yield* Ref.get(saved)).pushing).toBe(process.pid)
      yield* Fiber.interrupt(fiber)
      expect((yield* Ref.get(saved)).pushing).toBeNull()
    })
  )
})
