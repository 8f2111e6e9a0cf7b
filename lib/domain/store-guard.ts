import { AuthStoreUnavailableError } from '../errors.js'

/** A store call in flight: a link in its deadline list, which is ordered by deadline. */
interface PendingCall {
  deadline: number
  reject: (err: unknown) => void
  prev: PendingCall | null
  next: PendingCall | null
  /** false once settled or timed out: it is no longer in the list. */
  linked: boolean
}

/**
 * The calls in flight with one timeout, oldest first. Deadlines are `start + timeoutMs`
 * with a monotonic clock, so appending keeps the list sorted and the head is always
 * the next to expire: one timer serves them all, armed for the head, instead of a
 * `setTimeout`/`clearTimeout` pair per call on the hot path.
 */
class DeadlineList {
  readonly #timeoutMs: number
  #head: PendingCall | null = null
  #tail: PendingCall | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  add (reject: (err: unknown) => void): PendingCall {
    const call: PendingCall = { deadline: performance.now() + this.#timeoutMs, reject, prev: this.#tail, next: null, linked: true }
    if (this.#tail === null) this.#head = call
    else this.#tail.next = call
    this.#tail = call
    if (this.#timer === null) this.#arm(this.#timeoutMs)
    else if (call.prev === null) this.#timer.ref()
    return call
  }

  remove (call: PendingCall): void {
    if (!call.linked) return
    call.linked = false
    if (call.prev === null) this.#head = call.next
    else call.prev.next = call.next
    if (call.next === null) this.#tail = call.prev
    else call.next.prev = call.prev
    call.prev = null
    call.next = null
    // With no call left the timer stays armed but stops holding the process open, as a
    // cleared per-call timer would not hold it; `add` holds it again. Cheaper than
    // clearing and re-creating it whenever the list empties, which a fast store makes
    // happen on nearly every call.
    if (this.#head === null && this.#timer !== null) this.#timer.unref()
  }

  #arm (delay: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(delay)))
  }

  readonly #expire = (): void => {
    this.#timer = null
    const now = performance.now()
    let call = this.#head
    while (call !== null && call.deadline <= now) {
      const next = call.next
      this.remove(call)
      call.reject(new AuthStoreUnavailableError({ cause: new Error(`store call timed out after ${this.#timeoutMs} ms`) }))
      call = next
    }
    if (call !== null) this.#arm(call.deadline - now)
  }
}

const lists = new Map<number, DeadlineList>()

function deadlineList (timeoutMs: number): DeadlineList {
  let list = lists.get(timeoutMs)
  if (list === undefined) {
    list = new DeadlineList(timeoutMs)
    lists.set(timeoutMs, list)
  }
  return list
}

function unavailable (err: unknown): Error {
  return err instanceof AuthStoreUnavailableError ? err : new AuthStoreUnavailableError({ cause: err })
}

/**
 * Give a store call that has started a deadline. A rejection or a timeout becomes
 * `AuthStoreUnavailableError` (503) carrying the original as `cause`: the request
 * is refused (fail closed) and never hangs longer than `timeoutMs`.
 */
export function guardPromise<T> (pending: Promise<T>, timeoutMs: number): Promise<T> {
  // A custom store that answers with a plain value (no promise) is still answered.
  const settled = typeof (pending as { then?: unknown } | null)?.then === 'function' ? pending : Promise.resolve(pending)
  const list = deadlineList(timeoutMs)
  return new Promise<T>((resolve, reject) => {
    const call = list.add(reject)
    settled.then((value) => {
      list.remove(call)
      resolve(value)
    }, (err: unknown) => {
      list.remove(call)
      reject(unavailable(err))
    })
  })
}

/**
 * Run a store call with a deadline; see `guardPromise`. A synchronous throw is a
 * failure of the store too.
 */
export function guardStore<T> (operation: () => Promise<T>, timeoutMs: number): Promise<T> {
  let pending: Promise<T>
  try {
    pending = operation()
  } catch (err) {
    return Promise.reject(unavailable(err))
  }
  return guardPromise(pending, timeoutMs)
}
