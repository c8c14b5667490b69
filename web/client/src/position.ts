/**
 * A place in a channel: the offset of a publication (0 is before the
 * first) in an epoch, the incarnation of the channel's history. Keep the
 * position of the last publication handled, and subscribe `since` it to
 * miss nothing.
 */
export interface Position {
  offset: number;
  epoch: string;
}
