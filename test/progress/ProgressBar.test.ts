/** The progress line's text, with plain values. */
import { describe, expect, it } from "@effect/vitest"
import { formatBytes, formatDuration, renderProgress } from "../../src/progress/ProgressBar.js"

const MiB = 1024 * 1024

describe("renderProgress", () => {
  it("shows files and bytes done, throughput and time left", () => {
    const line = renderProgress({ files: 3, totalFiles: 12, bytes: 300 * MiB, totalBytes: 1200 * MiB, elapsedMs: 3000 }, 120)
    expect(line).toBe(`[${"#".repeat(10)}${"-".repeat(30)}]  25%  3/12 files  300 MiB / 1.17 GiB  100 MiB/s  0:09 left`)
  })

  it("claims no throughput nor time left before a second has passed", () => {
    const line = renderProgress({ files: 0, totalFiles: 2, bytes: 0, totalBytes: 4096, elapsedMs: 200 }, 100)
    expect(line).toContain("  0%  0/2 files  0 B / 4.00 KiB  -- /s  --:-- left")
  })

  it("counts files when there are no bytes, and fits a narrow terminal", () => {
    expect(renderProgress({ files: 1, totalFiles: 2, bytes: 0, totalBytes: 0, elapsedMs: 5000 }, 100)).toContain(" 50%  1/2 files")
    const narrow = renderProgress({ files: 1, totalFiles: 2, bytes: 10, totalBytes: 20, elapsedMs: 5000 }, 40)
    expect(narrow.length).toBeLessThan(40)
    expect(narrow).not.toContain("[")
  })

  it("never shows more than 100%", () => {
    expect(renderProgress({ files: 3, totalFiles: 2, bytes: 30, totalBytes: 20, elapsedMs: 5000 }, 100)).toContain("100%")
  })
})

describe("formatBytes and formatDuration", () => {
  it("binary units with three significant digits; m:ss, then h:mm:ss", () => {
    expect([0, 1023, 1536, 10.5 * 1024, 999 * MiB, 3 * 1024 * MiB].map(formatBytes)).toEqual(["0 B", "1023 B", "1.50 KiB", "10.5 KiB", "999 MiB", "3.00 GiB"])
    expect([0, 9.4, 61, 3600, 3725].map(formatDuration)).toEqual(["0:00", "0:09", "1:01", "1:00:00", "1:02:05"])
  })
})
