/**
 * `add META [ROOTFS]`: takes what `lxc image export` / `incus image export` write (a unified tarball alone,
 * or a metadata tarball and a squashfs, root.tar.xz or qcow2), places it by its metadata.yaml, copies it into a
 * hidden staging folder beside its version folder, renames it into place, and publishes the tree. Prints the
 * fingerprint the clients will show. A version name is never reused for other bytes.
 */
import { Args, Command, Options } from "@effect/cli"
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect, Either, Option } from "effect"
import { stringify } from "yaml"
import { Hasher } from "../indexer/Hasher.js"
import { Indexer } from "../indexer/Indexer.js"
import { imageYamlName } from "../tree/ImageYaml.js"
import { versionDir } from "../tree/Layout.js"
import { Metadata } from "../tree/Metadata.js"
import { detectCompression } from "../tree/MetadataRules.js"
import { placeImage, rootfsKindOf, splitNames, unifiedName } from "../tree/Placement.js"
import { folderOptions, resolveFolders } from "./Update.js"
import { UsageError } from "./Failure.js"

/** Bad input to `add`: one line naming the file or option, exit 2, nothing changed. */
export class AddError extends Data.TaggedError("AddError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

const text = (name: string, what: string) =>
  Options.text(name).pipe(Options.withDescription(`The ${what} folder (default: from metadata.yaml)`), Options.optional)

export const add = Command.make(
  "add",
  {
    ...folderOptions,
    meta: Args.file({ name: "META", exists: "yes" }),
    rootfs: Args.file({ name: "ROOTFS", exists: "yes" }).pipe(Args.optional),
    os: text("os", "os"),
    release: text("release", "release"),
    variant: text("variant", "variant"),
    arch: text("arch", "architecture"),
    // --version is the CLI's own (it prints the program's version)
    imageVersion: text("image-version", "version (YYYYMMDD_HH:MM)"),
    alias: Options.text("alias").pipe(Options.withDescription("An extra alias, written to the version's image.yaml (repeatable)"), Options.repeated)
  },
  (flags) =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const metadata = yield* Metadata
      const hasher = yield* Hasher
      const options = yield* resolveFolders(flags)
      const meta = path.resolve(flags.meta)
      const rootfs = Option.map(flags.rootfs, (r) => path.resolve(r))
      const fail = (file: string, reason: string) => Effect.fail(new AddError({ path: file, reason }))
      const head = (file: string) =>
        Effect.scoped(
          Effect.flatMap(fs.open(file, { flag: "r" }), (handle) =>
            Effect.map(handle.readAlloc(FileSystem.Size(8)), (bytes) => Option.getOrElse(bytes, () => new Uint8Array(0)))
          )
        )

      // what the export is, and what its files are called in the tree
      const metaCompression = detectCompression(yield* head(meta))
      const unified = Option.isNone(rootfs)
      const info = yield* metadata.read(meta, unified ? "unified" : "split").pipe(
        Effect.catchAll((p) => fail(meta, unified ? `${p.reason} (alone, META must be a unified image)` : p.reason))
      )
      const files: Array<{ readonly from: string; readonly name: string }> = []
      if (Option.isNone(rootfs)) {
        const name = unifiedName(metaCompression)
        if (!name) return yield* fail(meta, "a unified image must be compressed with gzip, xz or zstd")
        files.push({ from: meta, name })
      } else {
        const kind = rootfsKindOf(yield* head(rootfs.value), detectCompression(yield* head(rootfs.value)))
        if (!kind) return yield* fail(rootfs.value, "not a squashfs, a qcow2 or an xz-compressed root tarball")
        const names = splitNames(kind)
        files.push({ from: meta, name: names.metadata }, { from: rootfs.value, name: names.rootfs })
      }
      const ref = yield* Either.match(
        placeImage(info, {
          os: Option.getOrUndefined(flags.os),
          release: Option.getOrUndefined(flags.release),
          variant: Option.getOrUndefined(flags.variant),
          arch: Option.getOrUndefined(flags.arch),
          version: Option.getOrUndefined(flags.imageVersion)
        }),
        { onLeft: (reason) => fail(meta, reason), onRight: Effect.succeed }
      )

      // the fingerprint: a unified image's own sha256, else sha256(metadata ‖ rootfs)
      const hashed = unified
        ? yield* hasher.hash({ file: meta, heads: [], own: true })
        : yield* hasher.hash({ file: Option.getOrThrow(rootfs), heads: [meta], own: true })
      const fingerprint = unified ? hashed.own! : hashed.combined[0]!
      const shaOf = (file: string) => (file === meta ? (unified ? hashed.own! : hashed.headShas[0]!) : hashed.own!)

      const target = path.join(options.imagesDir, versionDir(ref))
      if (yield* fs.exists(target)) {
        // the same bytes again is a no-op; other bytes under a published version name are refused
        for (const f of files) {
          const there = path.join(target, f.name)
          const same = (yield* fs.exists(there)) && (yield* hasher.hash({ file: there, heads: [], own: true })).own === shaOf(f.from)
          if (!same) return yield* fail(target, `the version exists with other files; a version name is never reused for other bytes (give --image-version)`)
        }
        yield* Effect.logInfo(`${target} already holds this image: nothing to do`)
        yield* Effect.sync(() => process.stdout.write(`${fingerprint}\n`))
        return
      }

      // staged beside the version folder (same file system, hidden from the scan), then renamed into place
      const staging = path.join(path.dirname(target), `.${ref.version}.add-${process.pid}`)
      yield* fs.makeDirectory(staging, { recursive: true })
      yield* Effect.gen(function* () {
        for (const f of files) yield* fs.copyFile(f.from, path.join(staging, f.name))
        if (flags.alias.length > 0) yield* fs.writeFileString(path.join(staging, imageYamlName), stringify({ aliases: flags.alias }))
        for (const f of files) {
          const copied = yield* hasher.hash({ file: path.join(staging, f.name), heads: [], own: true })
          if (copied.own !== shaOf(f.from)) return yield* fail(f.from, "changed while it was copied")
        }
        yield* fs.rename(staging, target)
      }).pipe(Effect.onExit(() => fs.remove(staging, { recursive: true }).pipe(Effect.ignore)))
      yield* Effect.logInfo(`added ${target} (fingerprint ${fingerprint})`)

      // published now, under the writer lock; a running watch sees the rename as well and agrees
      const indexer = yield* Indexer
      yield* indexer.rebuild(options)
      yield* Effect.sync(() => process.stdout.write(`${fingerprint}\n`))
    }).pipe(
      // bad input: one line and exit 2, in the log format chosen, as every command's usage errors
      Effect.catchTag("AddError", (e) => Effect.fail(new UsageError({ reason: e.message })))
    )
).pipe(Command.withDescription("Add an image exported by lxc or incus (unified, or metadata and rootfs) to the tree, and publish it"))
