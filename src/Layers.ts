/**
 * The live layers, for the command line and for programs that embed the server. They need the platform
 * (FileSystem, Path, CommandExecutor): provide `NodeContext.layer` from @effect/platform-node once, at the edge.
 */
import { Layer } from "effect"
import { Hasher } from "./indexer/Hasher.js"
import { Indexer } from "./indexer/Indexer.js"
import { StreamsStore } from "./indexer/StreamsStore.js"
import { Metadata } from "./tree/Metadata.js"
import { Scanner } from "./tree/Scanner.js"
import { WatchService } from "./watch/WatchService.js"

/** Scanning, metadata, hashing and writing: what `update` uses (`Indexer.rebuild`). */
export const IndexerLive = Indexer.Default.pipe(
  Layer.provideMerge(Layer.mergeAll(Scanner.Default, Metadata.Default, Hasher.Default, StreamsStore.Default))
)

/** The service's loop (`WatchService.run`), with everything it uses. */
export const WatchLive = WatchService.Default.pipe(Layer.provideMerge(IndexerLive))
