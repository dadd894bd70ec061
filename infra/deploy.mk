# Admin targets for Azure, included by the top-level Makefile. Every target that touches Azure first
# runs the offline Bicep checks. the README (admin section) explains prerequisites, order and the failover drill.
#
#   make bicepcheck                     parse and check every template offline (also part of make test)
#   make what-if REGION=northeurope     show what a deployment would change, change nothing
#   make deploy  REGION=northeurope     deploy the region's infrastructure, then the code
#   make deploy-code REGION=westeurope  deploy only the code (dist/connecthub.zip) to a region
#
# REGION is one of the EU pair; deploy northeurope (the data home region) before westeurope.

GO             ?= go
AZ             ?= az
BICEP_DIR      := infra/bicep
DEPLOY_REGIONS := northeurope westeurope
DEPLOY_ZIP     := dist/connecthub.zip
DEPLOYMENT     = connecthub-$(REGION)
AZ_DEPLOY_ARGS = --name $(DEPLOYMENT) --location $(REGION) \
                 --template-file $(BICEP_DIR)/main.bicep --parameters $(BICEP_DIR)/$(REGION).bicepparam

.PHONY: bicepcheck deploy deploy-code what-if check-region check-az check-app-id

bicepcheck:
	$(GO) run ./cmd/bicepcheck $(BICEP_DIR)

check-region:
	@case " $(DEPLOY_REGIONS) " in *" $(REGION) "*) ;; \
	  *) echo "REGION must be one of: $(DEPLOY_REGIONS) (got '$(REGION)')" >&2; exit 2;; esac

check-az:
	@command -v $(AZ) >/dev/null || { echo "the Azure CLI ($(AZ)) is not installed; see the README (admin section)" >&2; exit 2; }
	@$(AZ) account show --query id -o tsv >/dev/null || { echo "not logged in: run az login" >&2; exit 2; }

# The parameter files read the Entra application id from the environment.
check-app-id:
	@test -n "$$CONNECTHUB_APP_ID" || { echo "CONNECTHUB_APP_ID is not set (the Entra application id); see the README (admin section)" >&2; exit 2; }

what-if: check-region check-app-id bicepcheck check-az
	$(AZ) deployment sub what-if $(AZ_DEPLOY_ARGS)

# The package is built before anything changes in Azure, so a build failure leaves the region untouched.
deploy: check-region check-app-id bicepcheck check-az package
	$(AZ) deployment sub create $(AZ_DEPLOY_ARGS)
	$(MAKE) --no-print-directory deploy-code REGION=$(REGION)

# Reads the app's name and resource group from the region's last deployment's outputs.
deploy-code: check-region check-az
	@test -f $(DEPLOY_ZIP) || { echo "$(DEPLOY_ZIP) is missing: run make package" >&2; exit 2; }
	@set -eu; \
	  rg=$$($(AZ) deployment sub show --name $(DEPLOYMENT) --query properties.outputs.resourceGroupName.value -o tsv); \
	  app=$$($(AZ) deployment sub show --name $(DEPLOYMENT) --query properties.outputs.functionAppName.value -o tsv); \
	  test -n "$$rg" && test -n "$$app" || { echo "no outputs for deployment $(DEPLOYMENT): run make deploy REGION=$(REGION)" >&2; exit 2; }; \
	  echo "$(AZ) functionapp deployment source config-zip --resource-group $$rg --name $$app --src $(DEPLOY_ZIP)"; \
	  $(AZ) functionapp deployment source config-zip --resource-group "$$rg" --name "$$app" --src $(DEPLOY_ZIP)
