/** Types of parse-prometheus-text-format (it ships none): the families of a Prometheus text exposition. */
declare module "parse-prometheus-text-format" {
  export interface PromSample {
    readonly labels?: Readonly<Record<string, string>>
    readonly value?: string
    readonly buckets?: Readonly<Record<string, string>>
    readonly count?: string
    readonly sum?: string
  }
  export interface PromFamily {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<PromSample>
  }
  export default function parsePrometheusTextFormat(text: string): Array<PromFamily>
}
