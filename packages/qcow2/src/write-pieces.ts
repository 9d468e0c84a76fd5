/** One guest cluster's part of a write: source bytes `[start, end)` land at byte `at` inside guest `cluster`. */
export interface ClusterPiece {
  cluster: number;
  at: number;
  start: number;
  end: number;
}

/** How a piece is written: in place at a known host offset, as a whole new cluster, or through copy-on-write. */
export type PieceRoute = { kind: 'in-place'; host: number } | { kind: 'whole' } | { kind: 'partial' };

/** Consecutive pieces written with one data I/O (in place or whole) or, for a partial piece, on its own. */
export interface PieceGroup {
  kind: PieceRoute['kind'];
  pieces: ClusterPiece[];
  /** For in-place groups: where the first piece's bytes go (the rest follow contiguously). */
  host?: number;
}

/** Splits `[offset, offset + length)` of the guest into the clusters it touches, in order. */
export function clusterPieces(offset: number, length: number, clusterSize: number): ClusterPiece[] {
  const pieces: ClusterPiece[] = [];
  for (let start = 0; start < length; ) {
    const guest = offset + start;
    const cluster = Math.floor(guest / clusterSize);
    const end = Math.min(length, (cluster + 1) * clusterSize - offset);
    pieces.push({ cluster, at: guest - cluster * clusterSize, start, end });
    start = end;
  }
  return pieces;
}

/**
 * Groups routed pieces into runs that each cost one data write (DESIGN.md: batch contiguous host clusters into one
 * I/O): in-place pieces whose host bytes follow each other (a partial head or tail included, since its bytes touch
 * the next cluster's), and whole clusters that need new host clusters (allocated as one run). Partial pieces that
 * need copy-on-write stay alone: their span is assembled from old contents, cluster by cluster.
 */
export function groupPieces(pieces: readonly ClusterPiece[], routes: readonly PieceRoute[]): PieceGroup[] {
  const groups: PieceGroup[] = [];
  let last: PieceGroup | undefined;
  let nextHost = -1;
  pieces.forEach((piece, i) => {
    const route = routes[i]!;
    const length = piece.end - piece.start;
    if (route.kind === 'in-place') {
      if (last?.kind === 'in-place' && route.host === nextHost) last.pieces.push(piece);
      else groups.push((last = { kind: 'in-place', pieces: [piece], host: route.host }));
      nextHost = route.host + length;
    } else if (route.kind === 'whole' && last?.kind === 'whole') {
      last.pieces.push(piece);
    } else {
      groups.push((last = { kind: route.kind, pieces: [piece] }));
    }
  });
  return groups;
}
