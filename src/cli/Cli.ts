/** The command line: the root command with its global options, and one subcommand per job. */
import { Command } from "@effect/cli"
import { Layer } from "effect"
import { InspectLive, WatchLive } from "../Layers.js"
import { GlobalLive, root } from "./Global.js"
import { init } from "./Init.js"
import { list } from "./List.js"
import { mirror } from "./Mirror.js"
import { prune, remove } from "./Prune.js"
import { readsOnly } from "./ReadOnly.js"
import { serve } from "./Serve.js"
import { status } from "./Status.js"
import { sync } from "./Sync.js"
import { add } from "./Add.js"
import { update } from "./Update.js"
import { verify } from "./Verify.js"
import { reload, watch } from "./Watch.js"

export const version = "0.1.0"

export const command = root.pipe(
  Command.withSubcommands([init, update, add, watch, reload, serve, list, verify, prune, remove, mirror, sync, status]),
  Command.provide(Layer.provideMerge(InspectLive, WatchLive)),
  Command.provide((options) => GlobalLive(options, readsOnly(options.subcommand)))
)

export const cli = Command.run(command, { name: "lxd-image-server", version })
