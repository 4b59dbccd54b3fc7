/* not_a_module.c: a valid shared object with no C_GetFunctionList, for the proxy to
 * skip when a .module file names it. */
int p11proxy_not_a_module(void);

int p11proxy_not_a_module(void)
{
    return 42;
}
