# SPDX-License-Identifier: Apache-2.0
"""Generated data sets and local-file loaders (nothing is downloaded)."""
