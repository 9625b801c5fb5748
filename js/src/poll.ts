/**
 * Live lists: a React hook that reloads data every refresh interval while its section is visible, and
 * at once when the section is shown again or someone asks for a refresh.
 */

import { ISignal } from '@lumino/signaling';
import { useCallback, useEffect, useRef, useState } from 'react';

import { errorMessage } from './api';

/** What a section's live lists need from the widget that hosts them. */
export interface IPollHost {
  /** Whether the section is on screen (sidebar shown, section expanded, browser tab visible). */
  isActive(): boolean;
  /** Milliseconds between refreshes (from the settings). */
  intervalMs(): number;
  /** Emitted when the section comes back on screen, or a refresh is asked for. */
  readonly refreshRequested: ISignal<unknown, void>;
}

export interface IPolled<T> {
  data: T | undefined;
  /** A readable message when the last load failed; the last good data stays in `data`. */
  error: string | undefined;
  loading: boolean;
  refresh: () => void;
}

/**
 * Load `load()` now and then every `host.intervalMs()` while `host.isActive()`; reload when `deps`
 * change. Requests never overlap, and none is made while the section is hidden.
 */
export function usePoll<T>(host: IPollHost, load: () => Promise<T>, deps: unknown[] = []): IPolled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const tickRef = useRef<() => void>(() => undefined);

  useEffect(() => {
    let disposed = false;
    let inFlight = false;
    let again = false;
    let timer: number | undefined;
    const schedule = (delay = host.intervalMs()) => {
      window.clearTimeout(timer);
      timer = window.setTimeout(tick, delay);
    };
    const tick = async () => {
      if (disposed) {
        return;
      }
      if (inFlight) {
        again = true; // asked for while loading: load once more right after
        return;
      }
      if (!host.isActive()) {
        schedule();
        return;
      }
      inFlight = true;
      again = false;
      try {
        const value = await loadRef.current();
        if (!disposed) {
          setData(value);
          setError(undefined);
        }
      } catch (e) {
        if (!disposed) {
          setError(errorMessage(e));
        }
      } finally {
        inFlight = false;
        if (!disposed) {
          setLoading(false);
          schedule(again ? 0 : undefined);
        }
      }
    };
    tickRef.current = () => void tick();
    const onRefresh = () => void tick();
    host.refreshRequested.connect(onRefresh);
    void tick();
    return () => {
      disposed = true;
      window.clearTimeout(timer);
      host.refreshRequested.disconnect(onRefresh);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [host, ...deps]);

  const refresh = useCallback(() => tickRef.current(), []);
  return { data, error, loading, refresh };
}
