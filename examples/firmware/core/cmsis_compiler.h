/*
 * cmsis_compiler.h -- the few CMSIS Core definitions CMSIS-DSP needs, for GCC on Armv7-M.
 *
 * CMSIS-DSP's arm_math_types.h includes "cmsis_compiler.h" from CMSIS Core
 * when it is built for a Cortex-M.  CMSIS Core is not part of the cmsisdsp
 * source distribution the reference firmware is built from, so this stand-in
 * supplies what the CMSIS-DSP functions the firmware links use: attribute
 * macros, __CLZ / __SSAT / __USAT / __ROR, and -- on cores with the DSP
 * extension (Cortex-M4/M7: __ARM_FEATURE_DSP) -- the SIMD and saturating
 * intrinsics, each mapped to its ACLE builtin (arm_acle.h), which GCC emits as
 * the single instruction CMSIS Core's inline assembly would (SSAT, QADD16,
 * SHADD16, SMUAD, SMLALD, ...).  The instruction set differs between the two
 * cores exactly as with CMSIS Core: on Cortex-M3 CMSIS-DSP takes its plain C
 * paths and none of the SIMD intrinsics is defined here.
 *
 * Only for GCC (arm-none-eabi-gcc) on Armv7-M / Armv7E-M.
 */
#ifndef SED_CMSIS_COMPILER_H
#define SED_CMSIS_COMPILER_H

#if !defined(__GNUC__) || !defined(__ARM_ARCH) || !defined(__ARM_ARCH_PROFILE) || (__ARM_ARCH_PROFILE != 'M')
#error "this cmsis_compiler.h stand-in is for arm-none-eabi-gcc on Cortex-M only"
#endif

#include <stdint.h>
#include <arm_acle.h>

#ifndef __ASM
#define __ASM __asm
#endif
#ifndef __INLINE
#define __INLINE inline
#endif
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __NO_RETURN
#define __NO_RETURN __attribute__((__noreturn__))
#endif
#ifndef __USED
#define __USED __attribute__((used))
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif
#ifndef __PACKED
#define __PACKED __attribute__((packed, aligned(1)))
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __RESTRICT
#define __RESTRICT __restrict
#endif

/* Count leading zeros; 32 for 0 (the CLZ instruction's result). */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    if (value == 0U) {
        return 32U;
    }
    return (uint8_t)__builtin_clz(value);
}

/* Rotate right (ROR). */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t op1, uint32_t op2)
{
    op2 %= 32U;
    if (op2 == 0U) {
        return op1;
    }
    return (op1 >> op2) | (op1 << (32U - op2));
}

/* Signed / unsigned saturation to a bit width (SSAT / USAT; the width must be a constant). */
#define __SSAT(ARG1, ARG2) __ssat((ARG1), (ARG2))
#define __USAT(ARG1, ARG2) __usat((ARG1), (ARG2))

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)

#define __QADD8(x, y) ((uint32_t)__qadd8((int8x4_t)(x), (int8x4_t)(y)))
#define __QSUB8(x, y) ((uint32_t)__qsub8((int8x4_t)(x), (int8x4_t)(y)))
#define __QADD16(x, y) ((uint32_t)__qadd16((int16x2_t)(x), (int16x2_t)(y)))
#define __QSUB16(x, y) ((uint32_t)__qsub16((int16x2_t)(x), (int16x2_t)(y)))
#define __SHADD16(x, y) ((uint32_t)__shadd16((int16x2_t)(x), (int16x2_t)(y)))
#define __SHSUB16(x, y) ((uint32_t)__shsub16((int16x2_t)(x), (int16x2_t)(y)))
#define __QASX(x, y) ((uint32_t)__qasx((int16x2_t)(x), (int16x2_t)(y)))
#define __QSAX(x, y) ((uint32_t)__qsax((int16x2_t)(x), (int16x2_t)(y)))
#define __SHASX(x, y) ((uint32_t)__shasx((int16x2_t)(x), (int16x2_t)(y)))
#define __SHSAX(x, y) ((uint32_t)__shsax((int16x2_t)(x), (int16x2_t)(y)))
#define __SMUAD(x, y) ((uint32_t)__smuad((int16x2_t)(x), (int16x2_t)(y)))
#define __SMUADX(x, y) ((uint32_t)__smuadx((int16x2_t)(x), (int16x2_t)(y)))
#define __SMUSD(x, y) ((uint32_t)__smusd((int16x2_t)(x), (int16x2_t)(y)))
#define __SMUSDX(x, y) ((uint32_t)__smusdx((int16x2_t)(x), (int16x2_t)(y)))
#define __SMLAD(x, y, acc) ((uint32_t)__smlad((int16x2_t)(x), (int16x2_t)(y), (int32_t)(acc)))
#define __SMLADX(x, y, acc) ((uint32_t)__smladx((int16x2_t)(x), (int16x2_t)(y), (int32_t)(acc)))
#define __SMLSDX(x, y, acc) ((uint32_t)__smlsdx((int16x2_t)(x), (int16x2_t)(y), (int32_t)(acc)))
#define __SMLALD(x, y, acc) ((uint64_t)__smlald((int16x2_t)(x), (int16x2_t)(y), (int64_t)(acc)))
#define __SMLALDX(x, y, acc) ((uint64_t)__smlaldx((int16x2_t)(x), (int16x2_t)(y), (int64_t)(acc)))
#define __SXTB16(x) ((uint32_t)__sxtb16((int8x4_t)(x)))
#define __QADD(x, y) __qadd((int32_t)(x), (int32_t)(y))
#define __QSUB(x, y) __qsub((int32_t)(x), (int32_t)(y))

/* Pack halfwords (PKHBT / PKHTB); GCC folds these to the instructions. */
#define __PKHBT(ARG1, ARG2, ARG3) \
    ((((uint32_t)(ARG1)) & 0x0000FFFFUL) | ((((uint32_t)(ARG2)) << (ARG3)) & 0xFFFF0000UL))
#define __PKHTB(ARG1, ARG2, ARG3) \
    ((((uint32_t)(ARG1)) & 0xFFFF0000UL) | ((((uint32_t)(ARG2)) >> (ARG3)) & 0x0000FFFFUL))

/* Signed most-significant-word multiply-accumulate (SMMLA). */
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t op1, int32_t op2, int32_t op3)
{
    int32_t result;
    __ASM volatile("smmla %0, %1, %2, %3" : "=r"(result) : "r"(op1), "r"(op2), "r"(op3));
    return result;
}

#endif /* __ARM_FEATURE_DSP */

#endif /* SED_CMSIS_COMPILER_H */
