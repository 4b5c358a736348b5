// What is loaded of one conversation's messages: a contiguous run, from
// `oldest` to `newest` by seq. History extends it downwards, live messages
// and resume upwards. A live message past a hole is kept at once, but
// `newest` stays below the hole until it is fetched, so a reconnection
// resumes from there. Conversations never opened have no timeline, only
// their list entry (preview, unread).

export class Timeline {
  constructor() {
    this.bySeq = new Map();
    this.oldest = null;
    this.newest = 0;
    this.hasOlder = true;
    /** The newest page has been read. */
    this.loaded = false;
    /** The page being read, if any. */
    this.loading = null;
    /** The hole being filled, if any. */
    this.filling = null;
  }

  /** Adds or replaces a message; true when it was new. */
  put(m) {
    const known = this.bySeq.has(m.seq);
    this.bySeq.set(m.seq, m);
    if (this.oldest === null || m.seq < this.oldest) this.oldest = m.seq;
    if (m.seq > this.newest) this.newest = m.seq;
    return !known;
  }

  /** Replaces a message only if it is loaded (an edit must not become an edge). */
  replace(m) {
    if (this.bySeq.has(m.seq)) this.bySeq.set(m.seq, m);
  }

  /** Messages in ascending seq. */
  sorted() {
    return [...this.bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Loaded messages of others above `seq`. */
  othersAbove(me, seq) {
    let count = 0;
    for (const m of this.bySeq.values()) if (m.sender_id !== me && m.seq > seq) count += 1;
    return count;
  }

  /** Loaded messages of others above `seq` that mention `me` (deleted ones mention nobody). */
  mentionsAbove(me, seq) {
    let count = 0;
    for (const m of this.bySeq.values()) {
      if (m.sender_id !== me && m.seq > seq && !m.deleted && m.mentions?.includes(me)) count += 1;
    }
    return count;
  }

  /** The highest seq of a message of others (0 if none is loaded). */
  newestOfOthers(me) {
    let newest = 0;
    for (const m of this.bySeq.values()) if (m.sender_id !== me && m.seq > newest) newest = m.seq;
    return newest;
  }

  /** The highest seq loaded (0 if none), whether contiguous or not. */
  highestShown() {
    return Math.max(0, ...this.bySeq.keys());
  }
}
