/**
 * How versions go to the hash workers: each rootfs read once for both its hashes while there are more files
 * than workers, and the last ones, one per worker, in split jobs (its own hash; its combined hash), so that the
 * workers end together. Either way a version gets the same hashes.
 */
import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { Hasher, type HashJob, makeHasher } from "../../src/indexer/Hasher.js"
import { VersionHasher } from "../../src/indexer/VersionHasher.js"
import { Metadata } from "../../src/tree/Metadata.js"
import { Scanner } from "../../src/tree/Scanner.js"
import { metadataYaml, sha256Of, squashfsHead, tempDir, writeMetadataTarball } from "../support/Images.js"

/** The real pool of `workers` threads, telling each job it is given. */
const recordingHasher = (workers: number, jobs: Array<HashJob>) =>
  Layer.scoped(
    Hasher,
    Effect.map(makeHasher({ workers }), (real) =>
      Hasher.make({ ...real, hash: (job, small) => Effect.suspend(() => (jobs.push(job), real.hash(job, small))) })
    )
  )

/** `count` versions of one product, each a metadata tarball and a 300 KB rootfs (too big to hash inline). */
const tree = (count: number) => {
  const images = tempDir("lis-versions-")
  const dirs = Array.from({ length: count }, (_, i) => join(images, "debian/bookworm/amd64/default", `2024010${i + 1}_10:00`))
  dirs.forEach((dir, i) => {
    writeMetadataTarball(join(dir, "lxd.tar.xz"), metadataYaml({ creationDate: 1704103200 + i }))
    const size = 300_000
    writeFileSync(join(dir, "rootfs.squashfs"), Buffer.concat([squashfsHead(size), Buffer.alloc(size - 96, i + 1)]))
  })
  return { images, dirs }
}

const hashAll = (images: string, workers: number, jobs: Array<HashJob>) =>
  Effect.gen(function* () {
    const scanned = yield* (yield* Scanner).scan(images)
    const versions = yield* VersionHasher
    const how = yield* versions.hashPlanFor(scanned.plans, "both")
    // one at a time, in order, so that the jobs are told in the order the workers get them
    return yield* Effect.forEach(scanned.plans, (plan) => versions.hashVersion(plan, how))
  }).pipe(
    Effect.provide(
      Layer.mergeAll(Scanner.Default, VersionHasher.Default).pipe(
        Layer.provideMerge(Layer.mergeAll(Metadata.Default, recordingHasher(workers, jobs))),
        Layer.provideMerge(NodeContext.layer)
      )
    )
  )

/** Each job's shape: the rootfs it reads, and whether it gives the own hash, the combined one, or both. */
const shapes = (jobs: ReadonlyArray<HashJob>, dirs: ReadonlyArray<string>) =>
  jobs
    .filter((j) => j.file.endsWith("rootfs.squashfs"))
    .map((j) => `${dirs.findIndex((d) => j.file.startsWith(d))}:${j.own ? "own" : ""}${j.heads.length > 0 ? "+combined" : ""}`)

describe("VersionHasher: one read per rootfs, the last ones split", () => {
  it.live("reads every rootfs once but the last one per worker, which go as split jobs; the hashes are the same", () =>
    Effect.gen(function* () {
      const { images, dirs } = tree(5)
      const jobs: Array<HashJob> = []
      const hashed = yield* hashAll(images, 2, jobs)
      expect(shapes(jobs, dirs).sort()).toEqual(["0:own+combined", "1:own+combined", "2:own+combined", "3:own", "3:+combined", "4:own", "4:+combined"].sort())
      hashed.forEach((v, i) => {
        const rootfs = join(dirs[i]!, "rootfs.squashfs")
        expect(v.rootfs[0]!.sha256).toBe(sha256Of(rootfs))
        expect(v.rootfs[0]!.combined["lxd.tar.xz"]).toBe(sha256Of(join(dirs[i]!, "lxd.tar.xz"), rootfs))
      })
    }))

  it.live("gives each worker one file in one read when there are as many files as workers, and splits them when fewer", () =>
    Effect.gen(function* () {
      const two = tree(2)
      const jobs: Array<HashJob> = []
      yield* hashAll(two.images, 2, jobs)
      expect(shapes(jobs, two.dirs).sort()).toEqual(["0:own+combined", "1:own+combined"])
      const one = tree(1)
      jobs.length = 0
      yield* hashAll(one.images, 2, jobs)
      expect(shapes(jobs, one.dirs).sort()).toEqual(["0:+combined", "0:own"])
    }))
})
