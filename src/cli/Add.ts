/**
 * `add META [ROOTFS]`: takes what `lxc image export` / `incus image export` write (a unified tarball alone,
 * or a metadata tarball and a squashfs, root.tar.xz or qcow2), places it by its metadata.yaml, publishes it
 * (see AddImage) and prints the fingerprint the clients will show.
 */
import { Args, Command, Options } from "@effect/cli"
import { Path } from "@effect/platform"
import { Effect, Option } from "effect"
import { readableStateDir } from "../config/StateDir.js"
import { setting } from "../config/Settings.js"
import { type AddError, addImage } from "../publish/AddImage.js"
import { UsageError } from "./Failure.js"
import { LoadedConfig } from "./Global.js"
import { lifecycleOptions, resolveFolders } from "./Update.js"


const text = (name: string, what: string) =>
  Options.text(name).pipe(Options.withDescription(`The ${what} folder (default: from metadata.yaml)`), Options.optional)

export const add = Command.make(
  "add",
  {
    ...lifecycleOptions,
    meta: Args.file({ name: "META", exists: "yes" }),
    rootfs: Args.file({ name: "ROOTFS", exists: "yes" }).pipe(Args.optional),
    os: text("os", "os"),
    release: text("release", "release"),
    variant: text("variant", "variant"),
    arch: text("arch", "architecture"),
    // --version is the CLI's own (it prints the program's version)
    imageVersion: text("image-version", "version (YYYYMMDD_HH:MM)"),
    alias: Options.text("alias").pipe(
      Options.withDescription("An extra alias, written to the version's image.yaml; on a version already there, added to it (repeatable)"),
      Options.repeated,
      // zero or more: a default shows it in brackets in the usage line
      Options.withDefault([])
    )
  },
  (flags) =>
    Effect.gen(function* () {
      const path = yield* Path.Path
      const { file } = yield* LoadedConfig
      const added = yield* addImage({
        folders: yield* resolveFolders(flags),
        // the withdrawals `prune` and `remove` recorded: a withdrawn version is not published again
        stateDir: yield* readableStateDir(setting(file, "state_dir", flags.stateDir)),
        meta: path.resolve(flags.meta),
        rootfs: Option.getOrUndefined(Option.map(flags.rootfs, (r) => path.resolve(r))),
        placement: {
          os: Option.getOrUndefined(flags.os),
          release: Option.getOrUndefined(flags.release),
          variant: Option.getOrUndefined(flags.variant),
          arch: Option.getOrUndefined(flags.arch),
          version: Option.getOrUndefined(flags.imageVersion)
        },
        aliases: flags.alias
      })
      yield* Effect.sync(() => process.stdout.write(`${added.fingerprint}\n`))
    }).pipe(
      // bad input: one line and exit 2, in the log format chosen, as every command's usage errors
      Effect.catchTag("AddError", (e: AddError) => Effect.fail(new UsageError({ reason: e.message }))),
      Effect.catchTag("FoldersError", (e) => Effect.fail(new UsageError({ reason: e.message })))
    )
).pipe(Command.withDescription("Add an image exported by lxc or incus (unified, or metadata and rootfs) to the tree, and publish it"))
