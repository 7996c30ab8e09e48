"""The authors' released pizza and clock (Zhong et al. 2023) as tasks."""
