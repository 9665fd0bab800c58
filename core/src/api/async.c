/*
 * async.c -- the handle's worker pool: asynchronous whole-document reads
 * (callbacks and futures) and stream read-ahead run here.
 *
 * The pool starts at the first job with config.async_workers threads.  Jobs
 * run in submission order.  Shutdown (streamdb_close) refuses new jobs,
 * cancels queued ones (their cancel hook runs), waits for running ones and
 * joins the threads.  A job's owner may take it back with sdb_async_remove
 * while it is still queued.
 */
#include "sdb.h"

#include <stdlib.h>

static void *worker(void *arg)
{
    sdb_env *env = arg;
    sdb_pool *p = &env->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->head)
            break;   /* stopping and nothing queued */
        sdb_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->run(j);
        pthread_mutex_lock(&p->mu);
        if (--p->running == 0)
            pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pool_init(sdb_pool *p)
{
    if (p->inited)
        return;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    p->inited = 1;
}

int sdb_async_submit(sdb_env *env, sdb_job *j)
{
    sdb_pool *p = &env->pool;
    if (!p->inited)
        return sdb_err(STREAMDB_ERR_INTERNAL, "worker pool not initialised");
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return sdb_err(STREAMDB_ERR_CLOSED, "the database is closing");
    }
    if (p->nthreads < (int)env->cfg.async_workers) {
        /* start lazily, one more thread per job until the pool is full */
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, env) == 0)
            p->nthreads++;
        else if (!p->nthreads) {
            pthread_mutex_unlock(&p->mu);
            return sdb_err(STREAMDB_ERR_NOMEM, "cannot start a worker thread");
        }
    }
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int sdb_async_remove(sdb_env *env, sdb_job *j)
{
    sdb_pool *p = &env->pool;
    int removed = 0;
    pthread_mutex_lock(&p->mu);
    sdb_job *prev = NULL;
    for (sdb_job *q = p->head; q; prev = q, q = q->next) {
        if (q == j) {
            if (prev)
                prev->next = q->next;
            else
                p->head = q->next;
            if (p->tail == q)
                p->tail = prev;
            p->queued--;
            removed = 1;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return removed;
}

void sdb_async_shutdown(sdb_env *env)
{
    sdb_pool *p = &env->pool;
    if (!p->inited)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    sdb_job *q = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    while (q) {
        sdb_job *next = q->next;
        q->cancel(q);
        q = next;
    }
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

uint64_t sdb_async_pending(sdb_env *env)
{
    sdb_pool *p = &env->pool;
    if (!p->inited)
        return 0;
    pthread_mutex_lock(&p->mu);
    uint64_t n = p->queued + (uint64_t)p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* called once per environment, at open */
void sdb_async_init(sdb_env *env) { pool_init(&env->pool); }

void sdb_async_destroy(sdb_env *env)
{
    sdb_pool *p = &env->pool;
    if (!p->inited)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    p->inited = 0;
}
