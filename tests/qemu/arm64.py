# SPDX-License-Identifier: GPL-2.0
#
# QEMU configuration for kunit.py (--qemu_config) on arm64 (ARCH=arm64).
# The machine is described in tests/qemu/args-arm64.
import os

from ..qemu_config import QemuArchParams

with open(os.path.join(os.path.dirname(__file__), 'args-arm64')) as f:
	_args = [l.strip() for l in f if l.strip() and not l.startswith('#')]

QEMU_ARCH = QemuArchParams(linux_arch='arm64',
			   kconfig='''
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y''',
			   qemu_arch='aarch64',
			   kernel_path='arch/arm64/boot/Image',
			   kernel_command_line='console=ttyAMA0',
			   extra_qemu_params=_args)
