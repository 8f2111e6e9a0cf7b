import { AuthStoreUnavailableError } from './errors.js'

/**
 * Run a store call with a deadline. A rejection or a timeout becomes
 * `AuthStoreUnavailableError` (503) carrying the original as `cause`: the request
 * is refused (fail closed) and never hangs longer than `timeoutMs`.
 */
export function guardStore<T> (operation: () => Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(onTimeout, timeoutMs)
    function onTimeout (): void {
      reject(new AuthStoreUnavailableError({ cause: new Error(`store call timed out after ${timeoutMs} ms`) }))
    }
    function onError (err: unknown): void {
      clearTimeout(timer)
      reject(err instanceof AuthStoreUnavailableError ? err : new AuthStoreUnavailableError({ cause: err }))
    }
    let pending: Promise<T>
    try {
      pending = operation()
    } catch (err) {
      onError(err)
      return
    }
    pending.then((value) => {
      clearTimeout(timer)
      resolve(value)
    }, onError)
  })
}
