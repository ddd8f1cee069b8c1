/** Reads metrics in the Prometheus text format with a real parser (parse-prometheus-text-format), never a regex. */
import parsePrometheusTextFormat, { type PromFamily, type PromSample } from "parse-prometheus-text-format"

export type { PromFamily, PromSample }

export const parseMetrics = (text: string): ReadonlyArray<PromFamily> => parsePrometheusTextFormat(text)

export const family = (families: ReadonlyArray<PromFamily>, name: string): PromFamily => {
  const f = families.find((x) => x.name === name)
  if (!f) throw new Error(`no metric ${name} among ${families.map((x) => x.name).join(", ")}`)
  return f
}

/** The value of a gauge or counter sample whose labels include `labels`. */
export const sampleValue = (families: ReadonlyArray<PromFamily>, name: string, labels: Readonly<Record<string, string>> = {}): number => {
  const f = family(families, name)
  const sample = f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
  if (!sample || sample.value === undefined) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}`)
  return Number(sample.value)
}
