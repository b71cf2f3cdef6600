import type { Status } from '../types';

export function StatusBadge({ status }: { status: Status }) {
  return <span class={`badge badge-${status.toLowerCase()}`}>{status}</span>;
}
