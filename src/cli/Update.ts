/** `update`: rebuild the whole catalog from scratch, re-hashing every file. The safeguard. */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { compatModes } from "../simplestreams/Compat.js"
import { Indexer } from "../indexer/Indexer.js"
import { defaults, setting } from "../config/Settings.js"
import { LoadedConfig } from "./Global.js"
import { pageSite } from "../page/PageWriter.js"
import { readableStateDir } from "../config/StateDir.js"
import { privatePage } from "./Private.js"


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

/** The state folder: the publisher's journal, the withdrawals, the mirrors' state, status.json. */
export const stateDirOption = Options.directory("state-dir").pipe(
  Options.withAlias("state_dir"),
  Options.withDescription(`Where the journal of hashes, refusals and generations, the withdrawals, the mirrors' state and status.json are kept (default ${defaults.state_dir}, else a per-user folder; config key state_dir)`),
  Options.optional
)

/** The folder options of the commands that change the catalog: the folders and the state folder. */
export const lifecycleOptions = { ...folderOptions, stateDir: stateDirOption }

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
        compat,
        private: yield* privatePage
      })
    }
  })

export const update = Command.make("update", lifecycleOptions, (flags) =>
  Effect.gen(function* () {
    const options = yield* resolveFolders(flags)
    const { file } = yield* LoadedConfig
    const indexer = yield* Indexer
    const stateDir = yield* readableStateDir(setting(file, "state_dir", flags.stateDir))
    // stopped before it wrote: not a success for `update && …`
    yield* indexer.rebuild(options, stateDir).pipe(Effect.onInterrupt(() => Effect.sync(() => (process.exitCode = 130))))
  })
).pipe(Command.withDescription("Rebuild index.json and images.json from the images folder, hashing every file"))
