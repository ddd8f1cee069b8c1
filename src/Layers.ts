/**
 * The live layers, for the command line and for programs that embed the server. They need the platform
 * (FileSystem, Path, CommandExecutor): provide `NodeContext.layer` from @effect/platform-node once, at the edge.
 */
import { Layer } from "effect"
import { CatalogStore } from "./indexer/CatalogStore.js"
import { Hasher } from "./indexer/Hasher.js"
import { Indexer } from "./indexer/Indexer.js"
import { VersionHasher } from "./indexer/VersionHasher.js"
import { WriterLock } from "./indexer/WriterLock.js"
import { MirrorPush } from "./mirror/MirrorPush.js"
import { Syncer } from "./sync/Syncer.js"
import { Deleter } from "./retention/Deleter.js"
import { Generations } from "./publish/Generations.js"
import { Metadata } from "./tree/Metadata.js"
import { Scanner } from "./tree/Scanner.js"
import { Verifier } from "./inspect/Verifier.js"
import { WatchService } from "./watch/WatchService.js"
import { Metrics } from "./health/Metrics.js"
import { ServiceBoard } from "./health/ServiceBoard.js"

/** Scanning, metadata, hashing, the catalog store and its lock, and the generations stream: what `update` uses (`Indexer.rebuild`). */
export const IndexerLive = Indexer.Default.pipe(
  Layer.provideMerge(Layer.mergeAll(Scanner.Default, CatalogStore.Default, WriterLock.Default, Generations.Default, VersionHasher.Default, Deleter.Default)),
  Layer.provideMerge(Layer.mergeAll(Metadata.Default, Hasher.Default))
)

/** Pushing the catalog to mirrors (`mirror push`, and `watch` after every generation). */
export const MirrorLive = MirrorPush.Default.pipe(Layer.provideMerge(WriterLock.Default))

/** Copying upstream servers into the tree (`sync`, and `watch` on an interval). */
export const SyncLive = Syncer.Default.pipe(Layer.provideMerge(IndexerLive))

/** The service's loop (`WatchService.run`), with everything it uses. */
export const WatchLive = WatchService.Default.pipe(Layer.provideMerge(Layer.mergeAll(IndexerLive, MirrorLive, SyncLive)))

/** The service's reports and its metrics, for `serve`'s health endpoints and `watch`'s metrics file. */
export const HealthLive = Layer.merge(ServiceBoard.Default, Metrics.Default)

/** What `verify` uses besides the indexer's layers: the Verifier, on the indexer's Hasher pool. */
export const InspectLive = Verifier.Default
