import { formatBytes, formatDuration, formatMetrics, formatParameters, formatRelative, formatRunError, secondsSince } from '../format';

describe('format', () => {
  it('formats durations', () => {
    expect(formatDuration(0.85)).toBe('850 ms');
    expect(formatDuration(2.345)).toBe('2.3 s');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(245)).toBe('4 min 05 s');
    expect(formatDuration(7380)).toBe('2 h 03 min');
    expect(formatDuration(null)).toBe('');
  });

  it('formats sizes', () => {
    expect(formatBytes(2 * 1024 ** 3)).toBe('2.0 GiB');
    expect(formatBytes(512 * 1024 ** 2)).toBe('512 MiB');
    expect(formatBytes(0)).toBe('');
  });

  it('formats times relative to now', () => {
    const now = Date.parse('2025-01-01T12:00:00Z');
    expect(formatRelative('2025-01-01T11:59:50Z', now)).toBe('just now');
    expect(formatRelative('2025-01-01T11:55:00Z', now)).toBe('5 min ago');
    expect(formatRelative('2025-01-01T15:00:00Z', now)).toBe('in 3 h');
    expect(formatRelative('2025-01-02T12:00:00Z', now)).toBe('in 1 day');
    expect(formatRelative(null, now)).toBe('');
  });

  it('shortens parameters', () => {
    expect(formatParameters({ n: 3, name: 'x' })).toBe('n=3, name="x"');
    expect(formatParameters({ long: 'y'.repeat(100) }, 20)).toHaveLength(20);
  });
});

describe('formatMetrics', () => {
  it('rounds numbers to 4 significant digits and keeps the rest', () => {
    expect(formatMetrics({ accuracy: 0.934567, n: 120, note: 'ok', auc: 1 })).toBe('accuracy 0.9346, n 120, note ok, auc 1');
    expect(formatMetrics({})).toBe('');
    expect(formatMetrics(undefined)).toBe('');
    expect(formatMetrics({ a: 'x'.repeat(100) }, 10)).toBe('a xxxxxxx…');
  });

  it('says why a run failed, with the 1-based cell', () => {
    expect(formatRunError({ type: 'ValueError', message: 'boom', cell: 3, traceback: '...' })).toBe('ValueError: boom (cell 4)');
    expect(formatRunError({ type: 'TimeoutError', message: null, cell: null, traceback: null })).toBe('TimeoutError');
  });

  it('measures how long a running run has run', () => {
    const now = Date.parse('2025-01-01T12:00:30Z');
    expect(secondsSince('2025-01-01T12:00:00Z', now)).toBe(30);
    expect(secondsSince(null, now)).toBeNull();
  });
});
