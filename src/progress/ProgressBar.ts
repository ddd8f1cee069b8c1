/** The text of a progress line, pure: files and bytes done, throughput and time left, fitted to a width. */

export interface ProgressState {
  readonly files: number
  readonly totalFiles: number
  readonly bytes: number
  readonly totalBytes: number
  readonly elapsedMs: number
}

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const

/** 1536 → "1.5 KiB": three significant digits at most, binary units as `ls -h` and `du -h` use. */
export const formatBytes = (n: number): string => {
  let value = Math.max(0, n)
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2
  return `${value.toFixed(digits)} ${units[unit]}`
}

/** Seconds as `m:ss`, or `h:mm:ss` from an hour on. */
export const formatDuration = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60]
  const two = (x: number) => String(x).padStart(2, "0")
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`
}

/**
 * The share done is the bytes' (files of very different sizes make the count of files a poor clock), or the
 * files' when there are no bytes to read. Throughput and time left need a second of history to mean anything.
 */
export const renderProgress = (state: ProgressState, width: number): string => {
  const share = state.totalBytes > 0 ? state.bytes / state.totalBytes : state.totalFiles > 0 ? state.files / state.totalFiles : 1
  const done = Math.min(1, Math.max(0, share))
  const seconds = state.elapsedMs / 1000
  const rate = seconds >= 1 ? state.bytes / seconds : undefined
  const left = rate !== undefined && rate > 0 ? (state.totalBytes - state.bytes) / rate : undefined
  const parts = [
    `${String(Math.floor(done * 100)).padStart(3)}%`,
    `${state.files}/${state.totalFiles} files`,
    `${formatBytes(state.bytes)} / ${formatBytes(state.totalBytes)}`,
    rate === undefined ? "-- /s" : `${formatBytes(rate)}/s`,
    `${left === undefined ? "--:--" : formatDuration(left)} left`
  ]
  const text = parts.join("  ")
  // a terminal wraps a line one column short of its width on some emulators: keep one free
  const room = width - 1 - text.length - 3
  if (room < 10) return text.slice(0, Math.max(0, width - 1))
  const barWidth = Math.min(40, room)
  const filled = Math.round(done * barWidth)
  return `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ${text}`
}
