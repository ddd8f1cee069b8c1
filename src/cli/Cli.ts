/** The command line: the root command with its global options, and one subcommand per job. */
import { Command } from "@effect/cli"
import { Layer } from "effect"
import { Indexer } from "../indexer/Indexer.js"
import { Hasher } from "../indexer/Hasher.js"
import { StreamsStore } from "../indexer/StreamsStore.js"
import { Metadata } from "../tree/Metadata.js"
import { Scanner } from "../tree/Scanner.js"
import { GlobalLive, root } from "./Global.js"
import { update } from "./Update.js"
import { reload, watch } from "./Watch.js"
import { init } from "./Init.js"
import { serve } from "./Serve.js"
import { WatchService } from "../watch/WatchService.js"

export const version = "0.1.0"

/** Everything the commands use, above the platform layer (FileSystem, Path, CommandExecutor). */
export const IndexerLive = Indexer.Default.pipe(
  Layer.provideMerge(Layer.mergeAll(Scanner.Default, Metadata.Default, Hasher.Default, StreamsStore.Default))
)

/** The service's loop, with everything it uses. */
export const WatchLive = WatchService.Default.pipe(Layer.provideMerge(IndexerLive))

export const command = root.pipe(
  Command.withSubcommands([init, update, watch, reload, serve]),
  Command.provide(WatchLive),
  Command.provide((options) => GlobalLive(options))
)

export const cli = Command.run(command, { name: "lxd-image-server", version })
