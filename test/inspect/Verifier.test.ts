import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { buildCatalog, type HashedVersion } from "../../src/indexer/Catalog.js"
import { Hasher, makeHasher } from "../../src/indexer/Hasher.js"
import { Verifier } from "../../src/inspect/Verifier.js"
import { canonicalJson } from "../../src/simplestreams/Streams.js"
import { tempDir } from "../support/Images.js"
import { files, hashedVersions } from "../support/Vectors.js"

const { debian, alpine } = hashedVersions
const alpineDir = "images/alpine/3.20/arm64/default/20260822_0742"

/** A web root holding the §6 vector files and a catalog of the versions given. */
const webRoot = (versions: ReadonlyArray<HashedVersion>) => {
  const root = tempDir("lis-verify-")
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true })
    writeFileSync(join(root, rel), text)
  }
  put("images/debian/bookworm/amd64/default/20260822_0742/incus.tar.xz", files.m1.text)
  put("images/debian/bookworm/amd64/default/20260822_0742/rootfs.squashfs", files.s1.text)
  put("images/debian/bookworm/amd64/default/20260822_0742/disk.qcow2", files.q1.text)
  put(`${alpineDir}/lxd.tar.xz`, files.m2.text)
  put(`${alpineDir}/rootfs.tar.xz`, files.r2.text)
  const streams = join(root, "streams", "v1")
  const publish = (list: ReadonlyArray<HashedVersion>) => {
    const catalog = buildCatalog(list, { compat: "both", imagesPath: "images" })
    put("streams/v1/images.json", canonicalJson(catalog.images))
    put("streams/v1/index.json", canonicalJson(catalog.index))
  }
  publish(versions)
  return { root, streams, publish }
}

/** The real pool, with something done just before the first file is hashed: what a `watch` might do meanwhile. */
const hasherDoing = (meanwhile: () => void) =>
  Layer.scoped(
    Hasher,
    Effect.map(makeHasher({ workers: 1 }), (real) => {
      let first = true
      return Hasher.make({
        ...real,
        hash: (job, small) =>
          Effect.suspend(() => {
            if (first) meanwhile()
            first = false
            return real.hash(job, small)
          })
      })
    })
  )

const verifyWith = (streams: string, meanwhile: () => void) =>
  Effect.flatMap(Verifier, (v) => v.verify({ streamsDir: streams })).pipe(
    Effect.provide(Verifier.Default.pipe(Layer.provide(hasherDoing(meanwhile)), Layer.provide(NodeContext.layer)))
  )

describe("Verifier beside a watch that replaces the catalog", () => {
  it.live("reports nothing for a version whose files left with it: the newer catalog dropped them", () =>
    Effect.gen(function* () {
      const w = webRoot([debian, alpine])
      const result = yield* verifyWith(w.streams, () => {
        w.publish([debian])
        rmSync(join(w.root, alpineDir), { recursive: true })
      })
      expect(result.problems).toEqual([])
      expect(result.replaced).toBe(1)
    }))

  it.live("still reports a missing file when the catalog was not replaced", () =>
    Effect.gen(function* () {
      const w = webRoot([debian, alpine])
      const result = yield* verifyWith(w.streams, () => rmSync(join(w.root, alpineDir, "rootfs.tar.xz")))
      expect(result.problems).toEqual([`${alpineDir}/rootfs.tar.xz: missing (listed by alpine:3.20:arm64:default 20260822_0742 rootfs.tar.xz)`])
      expect(result.replaced).toBe(0)
    }))

  it.live("still reports it when the newer catalog lists the version too", () =>
    Effect.gen(function* () {
      const w = webRoot([debian, alpine])
      const result = yield* verifyWith(w.streams, () => {
        w.publish([alpine])
        rmSync(join(w.root, alpineDir, "rootfs.tar.xz"))
      })
      expect(result.problems).toEqual([`${alpineDir}/rootfs.tar.xz: missing (listed by alpine:3.20:arm64:default 20260822_0742 rootfs.tar.xz)`])
      expect(result.replaced).toBe(1)
    }))
})
