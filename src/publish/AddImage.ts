/**
 * Adds what `lxc image export` / `incus image export` wrote (a unified tarball, or a metadata tarball and a
 * squashfs, root.tar.xz or qcow2) to the tree: placed by its metadata.yaml, copied into a hidden staging folder
 * beside its version folder with the sums of what was given (SHA256SUMS), renamed into place and published
 * under the writer lock (PublishOne); a version refused then is taken out again. A version name is never
 * reused for other bytes; the same bytes again is a no-op, or adds the aliases asked for.
 */
import { FileSystem, Path } from "@effect/platform"
import { statSync } from "node:fs"
import { Data, Effect, Either, Option } from "effect"
import { writeFileAtomic } from "../indexer/AtomicFile.js"
import type { HashedVersion } from "../indexer/Catalog.js"
import { Hasher } from "../indexer/Hasher.js"
import { Indexer, type IndexerOptions } from "../indexer/Indexer.js"
import { WriterLock } from "../indexer/WriterLock.js"
import { followBytes, Progress } from "../progress/Progress.js"
import { imageYamlName, withAliases } from "../tree/ImageYaml.js"
import { versionDir } from "../tree/Layout.js"
import { Metadata } from "../tree/Metadata.js"
import { detectCompression, type ImageMetadata } from "../tree/MetadataRules.js"
import { placeImage, type PlacementFlags, rootfsKindOf, splitNames, unifiedName } from "../tree/Placement.js"
import { sumsFileName } from "../tree/Sha256Sums.js"
import { noRootfsReason } from "../tree/TarScan.js"
import { checkAddFolders, makeFolders, removeEmptyFolders, removeStaleStaging, stagingName } from "./AddFolders.js"
import { versionsOfCatalog } from "./CatalogBase.js"
import { publishOne, type PublishOneOutcome, readWrittenCatalog } from "./PublishOne.js"

/** Bad input to `add`: one line naming the file or option, exit 2, nothing changed. */
export class AddError extends Data.TaggedError("AddError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

export interface AddRequest {
  readonly folders: IndexerOptions
  readonly stateDir: string
  /** Absolute paths: a unified tarball alone, or a metadata tarball and its rootfs. */
  readonly meta: string
  readonly rootfs: string | undefined
  readonly placement: PlacementFlags
  readonly aliases: ReadonlyArray<string>
}

export interface Added {
  /** The fingerprint clients show. */
  readonly fingerprint: string
  /** The version folder. */
  readonly target: string
}

/** The sha256 of each file a published version lists, by its name in the version folder. */
const listedShas = (version: HashedVersion): ReadonlyMap<string, string> =>
  new Map([...version.metadata, ...version.rootfs, ...(version.unified ? [version.unified] : [])].map((f) => [f.name, f.sha256]))

const sizeNow = (file: string) => {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

const how = (outcome: Extract<PublishOneOutcome, { _tag: "Published" }>) =>
  outcome.route._tag === "InPlace" ? "its product alone rendered again" : `the whole catalog rebuilt: ${outcome.route.reason}`

export const addImage = (request: AddRequest) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const metadata = yield* Metadata
    const hasher = yield* Hasher
    const lock = yield* WriterLock
    const progress = yield* Progress
    const { meta, rootfs, folders } = request
    // folders clients cannot be served from, or no images folder: said before anything is read or copied
    yield* checkAddFolders(folders)
    const fail = (file: string, reason: string) => Effect.fail(new AddError({ path: file, reason }))
    const head = (file: string) =>
      Effect.scoped(
        Effect.flatMap(fs.open(file, { flag: "r" }), (handle) =>
          Effect.map(handle.readAlloc(FileSystem.Size(8)), (bytes) => Option.getOrElse(bytes, () => new Uint8Array(0)))
        )
      )

    // what the export is, and what its files are called in the tree
    const unified = rootfs === undefined
    const metaCompression = detectCompression(yield* head(meta))
    const info: ImageMetadata = yield* metadata.read(meta, unified ? "unified" : "split").pipe(
      Effect.catchAll((p) => fail(meta, p.reason === noRootfsReason ? `${p.reason} (alone, META must be a unified image)` : p.reason))
    )
    const files: Array<{ readonly from: string; readonly name: string }> = []
    if (rootfs === undefined) {
      const name = unifiedName(metaCompression)
      if (!name) return yield* fail(meta, "a unified image must be compressed with gzip, xz or zstd")
      files.push({ from: meta, name })
    } else {
      const kind = rootfsKindOf(yield* head(rootfs), detectCompression(yield* head(rootfs)))
      if (!kind) return yield* fail(rootfs, "not a squashfs, a qcow2 or an xz-compressed root tarball")
      const names = splitNames(kind)
      files.push({ from: meta, name: names.metadata }, { from: rootfs, name: names.rootfs })
    }
    const ref = yield* Either.match(placeImage(info, request.placement), { onLeft: (reason) => fail(meta, reason), onRight: Effect.succeed })
    const aliasesAlone = withAliases("", request.aliases)
    if (Either.isLeft(aliasesAlone)) return yield* fail("--alias", aliasesAlone.left)
    const key = versionDir(ref)
    const imagesDir = path.resolve(folders.imagesDir)
    const target = path.join(imagesDir, key)
    // an add that was killed left its staging folder: removed once its process is gone
    yield* removeStaleStaging(path.dirname(target))
    const exists = yield* fs.exists(target)
    // an existing version is compared with the sums the catalog lists, or else read
    const listed = exists ? yield* listedVersion(folders, key) : undefined
    const bytes = files.reduce((n, f) => n + sizeNow(f.from), 0)
    // read, then copied and read again in place; or compared with the version there
    yield* progress.start(files.length, (exists ? (listed ? 1 : 2) : 3) * bytes)

    // the fingerprint: a unified image's own sha256, else sha256(metadata ‖ rootfs)
    const hashed = yield* followBytes(progress, hasher.bytesRead)(
      rootfs === undefined ? hasher.hash({ file: meta, heads: [], own: true }) : hasher.hash({ file: rootfs, heads: [meta], own: true })
    ).pipe(Effect.catchTag("HashError", (e) => fail(e.path, e.reason)))
    yield* progress.advance(0, bytes - hashed.size)
    const fingerprint = rootfs === undefined ? hashed.own! : hashed.combined[0]!
    const shas = new Map(files.map((f) => [f.name, f.from === meta && rootfs !== undefined ? hashed.headShas[0]! : hashed.own!]))

    if (exists) {
      // the same bytes again?
      const there = listed ? listedShas(listed) : undefined
      for (const f of files) {
        const file = path.join(target, f.name)
        const sha = there
          ? there.get(f.name)
          : (yield* fs.exists(file)) ? (yield* hasher.hash({ file, heads: [], own: true }).pipe(Effect.orElseSucceed(() => undefined)))?.own : undefined
        if (sha !== shas.get(f.name)) return yield* fail(target, "the version exists with other files; a version name is never reused for other bytes (give --image-version)")
      }
      const yamlFile = path.join(target, imageYamlName)
      const yamlText = (yield* fs.exists(yamlFile)) ? yield* fs.readFileString(yamlFile).pipe(Effect.mapError((e) => new AddError({ path: yamlFile, reason: e.message }))) : ""
      const edited = withAliases(yamlText, request.aliases)
      if (Either.isLeft(edited)) return yield* fail(yamlFile, edited.left)
      const added = edited.right.added
      if (added.length === 0 && listed) {
        yield* Effect.logInfo(`${target} already holds this image${request.aliases.length > 0 ? ", with these aliases" : ""}: nothing to do`)
        return { fingerprint, target } satisfies Added
      }
      const outcome = yield* Effect.gen(function* () {
        if (added.length > 0) yield* writeFileAtomic(yamlFile, edited.right.text).pipe(Effect.mapError((e) => new AddError({ path: yamlFile, reason: e.message })))
        // a version listed with these bytes is published again from what the catalog says, without reading it
        return yield* publishOne(folders, request.stateDir, key, listed ? info : undefined)
      }).pipe(lock.withLock(folders.streamsDir))
      if (outcome._tag === "Refused") return yield* fail(target, `not published: ${outcome.reason}`)
      if (added.length > 0) {
        yield* Effect.logInfo(`added the alias(es) ${added.join(", ")} to ${path.join(target, imageYamlName)} and published ${key} (${how(outcome)})`)
        if (!outcome.newest) yield* Effect.logWarning(`${key} is not the newest version of its product: the newest version's image.yaml names the product, so these aliases take effect only if it becomes the newest`)
      } else yield* Effect.logInfo(`published ${key}, which was not listed (${how(outcome)})`)
      return { fingerprint, target } satisfies Added
    }

    // staged beside the version folder (same file system, hidden from the scan), with the sums of what was
    // given, so that only copies that match them are ever published; then renamed into place
    const staging = path.join(path.dirname(target), stagingName(ref.version, process.pid))
    // the product's folders it makes go again when the version is refused, if nothing else came into them
    const made = yield* makeFolders(path.dirname(target), imagesDir)
    yield* fs.makeDirectory(staging)
    return yield* Effect.gen(function* () {
      // copies keep the time their bytes were last modified (as cp -p): the folder arrives whole, and a running
      // watch need not wait for it to settle before it lists it as well (it would leave it out meanwhile)
      let modified = new Date(0)
      for (const f of files) {
        const copy = path.join(staging, f.name)
        yield* followBytes(progress, () => sizeNow(copy))(fs.copyFile(f.from, copy))
        const mtime = Option.getOrElse((yield* fs.stat(f.from)).mtime, () => new Date())
        if (mtime > modified) modified = mtime
        yield* fs.utimes(copy, mtime, mtime)
      }
      if (request.aliases.length > 0) yield* fs.writeFileString(path.join(staging, imageYamlName), aliasesAlone.right.text)
      yield* fs.writeFileString(path.join(staging, sumsFileName), files.map((f) => `${shas.get(f.name)}  ${f.name}\n`).join(""))
      yield* fs.utimes(path.join(staging, sumsFileName), modified, modified)
      const outcome = yield* Effect.gen(function* () {
        if (yield* fs.exists(target)) return yield* fail(target, "appeared while the image was copied: run add again")
        yield* fs.rename(staging, target)
        // nothing is left in place that is not published: taken out again on a refusal, a failure or a stop
        // (unless a stop came just after the catalog naming it was written)
        const published = yield* publishOne(folders, request.stateDir, key).pipe(
          Effect.onExit((exit) =>
            exit._tag === "Success" && exit.value._tag === "Published"
              ? Effect.void
              : Effect.ignore(Effect.flatMap(listedVersion(folders, key), (listedNow) => (listedNow ? Effect.void : fs.rename(target, staging))))
          )
        )
        if (published._tag === "Refused") return yield* fail(target, `refused, and taken out again: ${published.reason}`)
        return published
      }).pipe(lock.withLock(folders.streamsDir))
      yield* Effect.logInfo(`added ${target} (fingerprint ${fingerprint}; ${how(outcome)})`)
      return { fingerprint, target } satisfies Added
    }).pipe(Effect.onExit(() => Effect.zipRight(fs.remove(staging, { recursive: true }).pipe(Effect.ignore), removeEmptyFolders(made))))
  }).pipe(Effect.ensuring(Effect.flatMap(Progress, (p) => p.done())))

/** The version folder `key` as the written catalog lists it, if it does. */
const listedVersion = (folders: IndexerOptions, key: string) =>
  Effect.gen(function* () {
    const indexer = yield* Indexer
    const current = yield* readWrittenCatalog(folders.streamsDir)
    if (Option.isNone(current)) return undefined
    const imagesPath = yield* indexer.imagesPathFor(folders)
    return Either.getOrUndefined(versionsOfCatalog(current.value.images, { compat: folders.compat, imagesPath }))?.get(key)
  })
