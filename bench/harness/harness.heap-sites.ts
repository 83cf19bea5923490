// Bytes allocated per event by allocation site, from V8's sampling heap
// profiler (load-independent): what the before/after benches' BENCH_SITES print.
import { Session } from 'node:inspector';

/** A frame of V8's sampling heap profile. */
export interface SampledFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface SampledNode {
  callFrame: SampledFrame;
  selfSize: number;
  children: SampledNode[];
}

/**
 * Starts the sampling heap profiler (every 64 bytes). `minorGC: false` counts
 * only what survived the scavenges (promoted). The returned stop gives the
 * bytes per event of each site: the nearest frame `siteOf` names, else
 * `outside`.
 */
export async function sampleHeapSites(
  minorGC = true,
): Promise<
  (
    events: number,
    siteOf: (frame: SampledFrame) => string | undefined,
    outside: string,
  ) => Promise<Map<string, number>>
> {
  const session = new Session();
  session.connect();
  const call = <T>(method: string, params: object = {}): Promise<T> =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) =>
        error ? reject(error) : resolve(result as T),
      ),
    );
  await call('HeapProfiler.enable');
  await call('HeapProfiler.startSampling', {
    samplingInterval: 64,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: minorGC,
  });
  return async (events, siteOf, outside) => {
    const { profile } = await call<{ profile: { head: SampledNode } }>('HeapProfiler.stopSampling');
    session.disconnect();
    const bytes = new Map<string, number>();
    const walk = (node: SampledNode, at: string): void => {
      const here = siteOf(node.callFrame) ?? at;
      if (node.selfSize > 0) bytes.set(here, (bytes.get(here) ?? 0) + node.selfSize / events);
      for (const child of node.children) walk(child, here);
    };
    walk(profile.head, outside);
    return bytes;
  };
}
