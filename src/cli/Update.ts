/** `update`: rebuild the whole catalog from scratch, re-hashing every file. The safeguard. */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { compatModes } from "../simplestreams/Compat.js"
import { Indexer } from "../indexer/Indexer.js"
import { defaults, setting } from "../config/Settings.js"
import { LoadedConfig } from "./Global.js"
import { pageSite } from "../page/PageWriter.js"


/** The folder options shared by `update` and `watch`. */
export const folderOptions = {
  imgDir: Options.directory("img-dir").pipe(
    Options.withAlias("img_dir"),
    Options.withDescription(`The images folder (default ${defaults.img_dir}; config key img_dir)`),
    Options.optional
  ),
  streamsDir: Options.directory("streams-dir").pipe(
    Options.withAlias("streams_dir"),
    Options.withDescription(`Where index.json and images.json go (default ${defaults.streams_dir}; config key streams_dir)`),
    Options.optional
  ),
  compat: Options.choice("compat", compatModes).pipe(
    Options.withDescription("Write metadata items for both clients, or only lxd or incus (default both; config key compat)"),
    Options.optional
  )
}

export const resolveFolders = (flags: {
  readonly imgDir: typeof folderOptions.imgDir extends Options.Options<infer A> ? A : never
  readonly streamsDir: typeof folderOptions.streamsDir extends Options.Options<infer A> ? A : never
  readonly compat: typeof folderOptions.compat extends Options.Options<infer A> ? A : never
}) =>
  Effect.gen(function* () {
    const { file } = yield* LoadedConfig
    const compat = setting(file, "compat", flags.compat)
    return {
      imagesDir: setting(file, "img_dir", flags.imgDir),
      streamsDir: setting(file, "streams_dir", flags.streamsDir),
      compat,
      // the server nginx serves: the names, port and certificate `init` set it up with
      page: yield* pageSite({
        publicUrl: setting(file, "public_url"),
        hostnames: setting(file, "hostname"),
        port: setting(file, "port"),
        sslDir: setting(file, "ssl_dir"),
        compat
      })
    }
  })

export const update = Command.make("update", folderOptions, (flags) =>
  Effect.gen(function* () {
    const options = yield* resolveFolders(flags)
    const indexer = yield* Indexer
    // stopped before it wrote: not a success for `update && …`
    yield* indexer.rebuild(options).pipe(Effect.onInterrupt(() => Effect.sync(() => (process.exitCode = 130))))
  })
).pipe(Command.withDescription("Rebuild index.json and images.json from the images folder, hashing every file"))
